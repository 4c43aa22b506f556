//! Reasons from facts: NetworkManager's view and the device's subnets, on the
//! seed's intent and on routes NetworkManager alone declares. The helpers that
//! build views, links and unit statuses serve the rules' too
//! (`rule_facts_tests.rs`).

use super::*;
use crate::intent::networkmanager::{expected, merge};
use crate::intent::{self, Options};
use crate::model::{DeviceState, NmConnection, NmDevice, NmProfile, NmView, ProfileFlags, StateReason};

const SEED: &[u8] = include_bytes!("../../../examples/seed-machineconfig.yaml");
const ENS5: u32 = 2;
const SEED_ROUTE: &str = "192.168.1.0/24";
pub(super) const KEYFILE: &str = "/etc/NetworkManager/system-connections/ens5.nmconnection";

pub(super) fn connection(id: &str, routes: &[(&str, &str)]) -> NmConnection {
    let routes: Vec<(&str, &str, Option<u32>)> = routes.iter().map(|(d, h)| (*d, *h, None)).collect();
    NmConnection::for_tests(id, "ens5", &routes)
}

pub(super) fn profile(c: &NmConnection, file: &str) -> NmProfile {
    NmProfile {
        settings: c.clone(),
        filename: Some(file.into()),
        flags: ProfileFlags(0),
    }
}

/// ens5 in `state` (activated: with `applied`), and the profiles.
pub(super) fn view(
    state: u32,
    managed: bool,
    applied: Option<NmConnection>,
    profiles: Vec<NmProfile>,
) -> NmView {
    NmView {
        devices: vec![NmDevice {
            interface: IfName::new("ens5").expect("name"),
            state: DeviceState(state),
            reason: StateReason(39),
            managed,
            applied,
        }],
        profiles,
        problems: Vec::new(),
    }
}

pub(super) fn ens5(configured: u64, addresses: &[&str]) -> Link {
    let mut l = Link::new(ENS5, IfName::new("ens5").expect("name"), true, true);
    l.last_configured_usec = Some(configured);
    l.addresses = addresses.iter().map(|a| a.parse().expect("net")).collect();
    l
}

pub(super) fn units(unit_exit_usec: u64) -> UnitsSeen {
    let unit = |name: &str, active: &str, exit: u64| {
        UnitStatus::oneshot_for_tests(name, active, "success", (1, 0), exit)
    };
    UnitsSeen::Seen(vec![
        unit("nmcli-dev-modify.service", "inactive", unit_exit_usec),
        unit("off-link.service", "inactive", unit_exit_usec),
        unit("NetworkManager.service", "active", 0),
    ])
}

/// The report on `intent` with every source up, no kernel route, the kernel
/// `rules`, `link` and `units`.
pub(super) fn report(
    intent: &Intent,
    view: Option<&NmView>,
    link: Link,
    rules: &[ObservedRule],
    units: &UnitsSeen,
) -> DriftReport {
    let index = RouteIndex::default();
    let links = [link];
    let seen = Observed {
        routes: &index,
        rules,
        links: Some(&links),
        units,
        networkmanager: view,
        boot: None,
    };
    let sources = Sources {
        machineconfig: SourceState::Up,
        netlink: SourceState::Up,
        systemd: SourceState::Up,
        networkmanager: SourceState::Up,
    };
    compare(intent, seen, sources)
}

/// The route to `dest`'s verdict: (codes, texts).
fn judge(intent: &Intent, view: Option<&NmView>, link: Link, dest: &str) -> (Vec<&'static str>, Vec<String>) {
    judge_with(intent, view, link, dest, units(10_000_000))
}

fn judge_with(
    intent: &Intent,
    view: Option<&NmView>,
    link: Link,
    dest: &str,
    seen_units: UnitsSeen,
) -> (Vec<&'static str>, Vec<String>) {
    let report = report(intent, view, link, &[], &seen_units);
    let v = report
        .routes
        .iter()
        .find(|r| r.expected.destination.to_string() == dest)
        .expect("the route is expected");
    let codes = v.reasons.0.iter().map(|r| r.kind.code()).collect();
    (codes, v.reasons.0.iter().map(|r| r.text.clone()).collect())
}

fn seed() -> Intent {
    intent::from_bytes(SEED, &Options::default()).expect("seed parses")
}

#[test]
fn applied_but_deleted_is_removed_outside_networkmanager() {
    let applied = connection("ens5", &[(SEED_ROUTE, "172.18.0.1")]);
    let v = view(100, true, Some(applied.clone()), vec![profile(&applied, KEYFILE)]);
    let intent = merge(seed(), expected(&v));
    let (codes, texts) = judge(&intent, Some(&v), ens5(1_000_000, &["172.18.0.2/16"]), SEED_ROUTE);
    assert_eq!(codes, ["removed-outside-networkmanager"]);
    assert!(texts[0].contains("nmcli device reapply ens5"), "{texts:?}");
    let (codes, _) = judge(&intent, None, ens5(1_000_000, &["172.18.0.2/16"]), SEED_ROUTE);
    assert_eq!(
        codes,
        ["unexplained"],
        "without NetworkManager's view: the old inference"
    );
}

#[test]
fn a_device_modify_undone_by_reactivation_is_not_in_the_applied_connection() {
    let applied = connection("ens5", &[]);
    let v = view(100, true, Some(applied.clone()), vec![profile(&applied, KEYFILE)]);
    let (codes, texts) = judge(
        &seed(),
        Some(&v),
        ens5(15_000_000, &["172.18.0.2/16"]),
        SEED_ROUTE,
    );
    assert_eq!(codes, ["not-in-applied-connection"]);
    assert!(
        texts[0].contains("the connection applied to ens5 (\"ens5\") lacks it: the nmcli device modify that added it was undone when ens5 was re-activated 5 s after the unit ran"),
        "{texts:?}"
    );
    let (_, texts) = judge(
        &seed(),
        Some(&v),
        ens5(10_500_000, &["172.18.0.2/16"]),
        SEED_ROUTE,
    );
    assert!(
        texts[0].ends_with("was re-activated"),
        "within the clock margin, no timing: {texts:?}"
    );
}

#[test]
fn a_profile_changed_but_not_reapplied() {
    let applied = connection("rw", &[]);
    let changed = connection("rw", &[("10.9.0.0/16", "172.18.0.1")]);
    let v = view(
        100,
        true,
        Some(applied),
        vec![profile(
            &changed,
            "/etc/NetworkManager/system-connections/rw.nmconnection",
        )],
    );
    let intent = merge(Intent::default(), expected(&v));
    let (codes, texts) = judge(&intent, Some(&v), ens5(1, &["172.18.0.2/16"]), "10.9.0.0/16");
    assert_eq!(codes, ["not-in-applied-connection"]);
    assert!(
        texts[0].contains("connection \"rw\" has it but was not re-applied"),
        "{texts:?}"
    );
}

#[test]
fn an_autoconnect_profile_on_a_disconnected_device_is_inactive() {
    let p = connection("rw", &[("10.9.0.0/16", "172.18.0.1")]);
    let v = view(
        30,
        true,
        None,
        vec![profile(
            &p,
            "/etc/NetworkManager/system-connections/rw.nmconnection",
        )],
    );
    let intent = merge(Intent::default(), expected(&v));
    let (codes, texts) = judge(&intent, Some(&v), ens5(1, &[]), "10.9.0.0/16");
    assert_eq!(codes, ["connection-inactive"]);
    assert_eq!(
        texts[0],
        "connection \"rw\" is not active on ens5: ens5 is disconnected (disconnected by a user or client (39))"
    );
    let other = connection("other", &[]);
    let v = view(
        100,
        true,
        Some(other.clone()),
        vec![profile(&p, "/x"), profile(&other, "/y")],
    );
    let (codes, texts) = judge(&intent, Some(&v), ens5(1, &["172.18.0.2/16"]), "10.9.0.0/16");
    assert_eq!(codes, ["connection-inactive"]);
    assert!(texts[0].ends_with("ens5 runs connection \"other\""), "{texts:?}");
}

#[test]
fn an_unmanaged_device() {
    let v = view(10, false, None, Vec::new());
    let (codes, texts) = judge(&seed(), Some(&v), ens5(1, &["172.18.0.2/16"]), SEED_ROUTE);
    assert_eq!(codes, ["device-unmanaged"]);
    assert!(
        texts[0].starts_with("NetworkManager does not manage ens5 (state unmanaged)"),
        "{texts:?}"
    );
}

const KEYFILE_MC: &str = r#"{"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfig",
  "metadata": {"name": "keyfile"}, "spec": {"config": {"ignition": {"version": "3.2.0"}, "storage": {"files": [
  {"path": "/etc/NetworkManager/system-connections/ens5.nmconnection", "mode": MODE,
   "contents": {"source": "data:,%5Bconnection%5D%0Aid%3Dens5%0Ainterface-name%3Dens5%0A%5Bipv4%5D%0Amethod%3Dmanual%0Aaddress1%3D172.18.0.2%2F16%0Aroute1%3D10.7.0.0%2F16%2C172.18.0.1%0A"}}]}}}}"#;

#[test]
fn a_keyfile_networkmanager_has_not_loaded() {
    let mc = |mode: &str| {
        intent::from_bytes(KEYFILE_MC.replace("MODE", mode).as_bytes(), &Options::default()).expect("parses")
    };
    let old = connection("ens5", &[]);
    let v = view(100, true, Some(old.clone()), vec![profile(&old, KEYFILE)]);
    let (codes, texts) = judge(&mc("384"), Some(&v), ens5(1, &["172.18.0.2/16"]), "10.7.0.0/16");
    assert_eq!(codes, ["profile-not-loaded"]);
    assert!(
        texts[0].contains("the file changed since NetworkManager loaded it"),
        "{texts:?}"
    );
    let none = view(100, true, Some(old), Vec::new());
    let (codes, texts) = judge(
        &mc("384"),
        Some(&none),
        ens5(1, &["172.18.0.2/16"]),
        "10.7.0.0/16",
    );
    assert_eq!(codes, ["profile-not-loaded"]);
    assert!(
        texts[0].starts_with(&format!("NetworkManager has not loaded keyfile {KEYFILE}")),
        "{texts:?}"
    );
    let (codes, _) = judge(
        &mc("420"),
        Some(&none),
        ens5(1, &["172.18.0.2/16"]),
        "10.7.0.0/16",
    );
    assert_eq!(
        codes,
        ["keyfile-mode"],
        "a mode NetworkManager refuses says why it is not loaded"
    );
}

const OFF_LINK_MC: &str = r#"{"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfig",
  "metadata": {"name": "off-link"}, "spec": {"config": {"ignition": {"version": "3.2.0"}, "systemd": {"units": [
  {"name": "off-link.service", "enabled": true, "contents": "[Service]\nType=oneshot\nExecStart=-/usr/sbin/ip route add 10.9.0.0/16 via 192.0.2.1 dev ens5\n"}]}}}}"#;

#[test]
fn an_off_link_gateway_is_unreachable() {
    let intent = intent::from_bytes(OFF_LINK_MC.as_bytes(), &Options::default()).expect("parses");
    assert_eq!(intent.routes.len(), 1, "{:?}", intent.diagnostics);
    let (codes, texts) = judge(
        &intent,
        None,
        ens5(1, &["172.18.0.2/16", "fd00::2/64"]),
        "10.9.0.0/16",
    );
    assert_eq!(codes, ["gateway-unreachable"]);
    assert_eq!(
        texts[0],
        "gateway 192.0.2.1 is on no subnet of ens5 (172.18.0.0/16): the kernel refuses a route through it"
    );
    let (codes, _) = judge(&intent, None, ens5(1, &["192.0.2.7/24"]), "10.9.0.0/16");
    assert_ne!(codes, ["gateway-unreachable"], "on the device's subnet");
    let (codes, _) = judge(&intent, None, ens5(1, &[]), "10.9.0.0/16");
    assert_ne!(
        codes,
        ["gateway-unreachable"],
        "no IPv4 subnet: not the gateway's fault"
    );
    let mut onlink = intent.clone();
    onlink.routes[0].traits.onlink = true;
    let (codes, _) = judge(&onlink, None, ens5(1, &["172.18.0.2/16"]), "10.9.0.0/16");
    assert_ne!(codes, ["gateway-unreachable"], "onlink routes take any gateway");
}

#[test]
fn a_failed_command_is_followed_by_why_it_failed() {
    let intent = intent::from_bytes(OFF_LINK_MC.as_bytes(), &Options::default()).expect("parses");
    let mut seen = units(10_000_000);
    if let UnitsSeen::Seen(all) = &mut seen {
        let off_link = all.iter_mut().find(|u| u.name.as_str() == "off-link.service");
        let service = off_link
            .and_then(|u| u.service.as_mut())
            .expect("off-link.service");
        service.commands = vec![crate::model::CommandStatus {
            property: "ExecStart",
            index: 0,
            ran: true,
            code: 1,
            status: 2,
        }];
    }
    let (codes, texts) = judge_with(&intent, None, ens5(1, &["172.18.0.2/16"]), "10.9.0.0/16", seen);
    assert_eq!(codes, ["command-failed", "gateway-unreachable"], "{texts:?}");
}

#[test]
fn networkmanager_reaches_off_link_gateways_itself() {
    let applied = connection("rw", &[("10.9.0.0/16", "192.0.2.1")]);
    let v = view(100, true, Some(applied.clone()), vec![profile(&applied, "/x")]);
    let intent = merge(Intent::default(), expected(&v));
    let (codes, _) = judge(&intent, Some(&v), ens5(1, &["172.18.0.2/16"]), "10.9.0.0/16");
    assert_eq!(
        codes,
        ["removed-outside-networkmanager"],
        "it adds a direct route to the gateway"
    );
}

#[test]
fn connection_verdicts() {
    let applied = connection("ens5", &[("10.9.0.0/16", "172.18.0.1")]);
    let v = view(100, true, Some(applied.clone()), vec![profile(&applied, KEYFILE)]);
    let intent = merge(Intent::default(), expected(&v));
    let active = super::facts::connections(&intent, Some(&v));
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].connection.as_str(), active[0].active),
        ("ens5", Some(true))
    );
    let down = view(30, true, None, vec![profile(&applied, KEYFILE)]);
    assert_eq!(
        super::facts::connections(&intent, Some(&down))[0].active,
        Some(false)
    );
    assert_eq!(super::facts::connections(&intent, None)[0].active, None);
}
