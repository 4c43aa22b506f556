//! The compare stage on a MachineConfig written after this boot: `pending-reboot`.

use super::*;
use crate::model::{Boot, ConfigFile};

/// This boot began 1 s into CLOCK_MONOTONIC, at 2023-11-14T22:13:20Z.
const BOOT: Boot = Boot {
    monotonic_usec: 1_000_000,
    realtime_usec: 1_700_000_000_000_000,
};
/// A unit stamp `s` seconds into CLOCK_MONOTONIC, i.e. `s - 1` s after the boot.
const fn mono(s: u64) -> u64 {
    s * 1_000_000
}

/// The seed's intent read from a file written `after_boot_s` seconds after the boot.
fn written(after_boot_s: i64) -> Intent {
    let mut intent = seed();
    intent.file = Some(ConfigFile {
        path: "/etc/machine-config-daemon/currentconfig".into(),
        changed_usec: (BOOT.realtime_usec as i64 + after_boot_s * 1_000_000) as u64,
        image: None,
        from_node: true,
    });
    intent
}

fn eval(intent: &Intent, unit: UnitStatus, boot: Option<Boot>) -> DriftReport {
    let index = RouteIndex::default();
    let links = vec![link(ENS5, "ens5", true, Some(1))];
    let units = UnitsSeen::Seen(vec![unit, nm("active")]);
    let seen = Observed {
        routes: &index,
        rules: &[],
        links: Some(&links),
        units: &units,
        networkmanager: None,
        boot,
    };
    compare(intent, seen, up())
}

fn never_ran() -> UnitStatus {
    let mut s = status("nmcli-dev-modify.service", "inactive", "success", 0, 0, 0);
    s.service = Some(ServiceStatus::default());
    s
}

#[test]
fn a_new_unit_that_never_ran_waits_for_the_reboot() {
    let r = eval(&written(60), never_ran(), Some(BOOT));
    assert_eq!(codes(&r), ["pending-reboot"]);
    assert_eq!(
        texts(&r)[0],
        "the MachineConfig was written at 2023-11-14T22:14:20Z, after this boot; unit nmcli-dev-modify.service has not run since (this boot began at 2023-11-14T22:13:20Z): the route comes with the next boot, or when the unit runs"
    );
    assert_eq!(r.machineconfig_written_after_boot, Some(true));
    assert!(r.drift, "a pending route is still not present");
}

#[test]
fn a_unit_that_ran_before_the_write_waits_too() {
    let r = eval(&written(60), unit_ok(mono(5)), Some(BOOT));
    assert_eq!(codes(&r), ["pending-reboot"], "{:?}", texts(&r));
}

#[test]
fn a_unit_run_after_the_write_is_not_pending() {
    let r = eval(&written(60), unit_ok(mono(120)), Some(BOOT));
    assert_eq!(codes(&r), ["unexplained"]);
    assert_eq!(r.machineconfig_written_after_boot, Some(true));
}

#[test]
fn a_config_written_before_this_boot_is_not_pending() {
    let r = eval(&written(-60), never_ran(), Some(BOOT));
    assert_eq!(codes(&r), ["unit-not-run"]);
    assert_eq!(r.machineconfig_written_after_boot, Some(false));
}

#[test]
fn a_failure_stays_beside_it_and_a_disabled_unit_is_not_pending() {
    let failed = status("nmcli-dev-modify.service", "failed", "exit-code", 1, 8, mono(5));
    let r = eval(&written(60), failed, Some(BOOT));
    assert_eq!(codes(&r), ["unit-failed", "pending-reboot"]);
    let mut disabled = never_ran();
    disabled.unit_file_state = "disabled".into();
    let r = eval(&written(60), disabled, Some(BOOT));
    assert_eq!(codes(&r), ["unit-disabled"]);
}

#[test]
fn unknown_boot_or_file_decides_nothing() {
    let r = eval(&written(60), never_ran(), None);
    assert_eq!(codes(&r), ["unit-not-run"]);
    assert_eq!(r.machineconfig_written_after_boot, None);
    let r = eval(&seed(), never_ran(), Some(BOOT));
    assert_eq!(codes(&r), ["unit-not-run"]);
    assert_eq!(r.machineconfig_file, None);
}

#[test]
fn a_file_named_on_the_command_line_says_nothing_of_the_boot() {
    let mut intent = written(60);
    if let Some(f) = intent.file.as_mut() {
        f.from_node = false;
    }
    let r = eval(&intent, never_ran(), Some(BOOT));
    assert_eq!(codes(&r), ["unit-not-run"]);
    assert_eq!(r.machineconfig_written_after_boot, None);
}

#[test]
fn json_names_the_file() {
    let r = eval(&written(60), never_ran(), Some(BOOT));
    let v = serde_json::to_value(&r).expect("serializes");
    assert_eq!(
        v["machineconfig_file"],
        serde_json::json!({"path": "/etc/machine-config-daemon/currentconfig", "image": null, "written_at": "2023-11-14T22:14:20Z"})
    );
    assert_eq!(v["machineconfig_written_after_boot"], true);
    assert_eq!(
        v["routes"][0]["reason_codes"],
        serde_json::json!(["pending-reboot"])
    );
}
