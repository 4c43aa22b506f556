//! Compare stage: a route waiting for a reboot. The MCO's daemon writes the new
//! `currentconfig` after the files and units and before it reboots into them, and
//! after a rebootless update a new unit runs only at the next boot: until then the
//! routes that unit adds are expected and not there. The node says so itself: the
//! config was written after this boot began and the unit that adds the route has
//! not started since. Such a route gets `pending-reboot` instead of the reasons
//! that only say the unit has not run (`unit-not-run`, `unit-not-found`) or that
//! nothing explains it (`unexplained`); the other reasons stay, they hold whatever
//! a reboot does. Only the node's own files tell when the MCO wrote them: a copy
//! named with `--machineconfig` decides nothing.

use crate::model::{Boot, ConfigFile, ExpectedRoute};

use super::reasons::{Reason, ReasonKind};
use super::units::{UnitState, UnitVerdict};
use super::{unit, RouteState, RouteVerdict};

/// Whether the node's config file was written after this boot began; None while
/// either is unknown, or the file is not the node's own (`--machineconfig`).
pub fn written_after_boot(file: Option<&ConfigFile>, boot: Option<Boot>) -> Option<bool> {
    let file = file.filter(|f| f.from_node)?;
    Some(file.changed_usec > boot?.realtime_usec)
}

/// The decision: the config was written (`written_usec`, microseconds since the
/// epoch) after the boot began (`booted_usec`), and the unit has not started since
/// (`unit_started_usec`: its last start, None when it never started this boot).
pub fn pending_reboot(written_usec: u64, booted_usec: u64, unit_started_usec: Option<u64>) -> bool {
    written_usec > booted_usec && unit_started_usec.is_none_or(|t| t < written_usec)
}

/// Reasons that only say the unit has not run, or that nothing explains the drift:
/// a pending reboot explains it.
const SUPERSEDED: [ReasonKind; 3] = [
    ReasonKind::UnitNotRun,
    ReasonKind::UnitNotFound,
    ReasonKind::Unexplained,
];

/// Give each route that is not present and waits for a reboot its `pending-reboot`.
pub(super) fn mark_pending(
    routes: &mut [RouteVerdict],
    units: &[UnitVerdict],
    file: Option<&ConfigFile>,
    boot: Option<Boot>,
) {
    let (Some(file), Some(boot)) = (file.filter(|f| f.from_node), boot) else {
        return;
    };
    for v in routes.iter_mut().filter(|v| v.state != RouteState::Present) {
        if let Some(why) = pending(&v.expected, units, file, boot) {
            let reasons = &mut v.reasons.0;
            let at = reasons.iter().position(|x| SUPERSEDED.contains(&x.kind));
            reasons.retain(|x| !SUPERSEDED.contains(&x.kind));
            reasons.insert(at.unwrap_or(reasons.len()).min(reasons.len()), why);
        }
    }
}

/// The reason, when the route's unit has not started since the config was written
/// after this boot. Not for a unit that is disabled (a reboot does not start it)
/// or unknown (systemd not asked).
fn pending(r: &ExpectedRoute, units: &[UnitVerdict], file: &ConfigFile, boot: Boot) -> Option<Reason> {
    let name = r.source.unit.as_ref()?;
    let v = unit(units, name)?;
    if matches!(v.state, UnitState::Disabled) || !v.state.is_known() {
        return None;
    }
    let started = v
        .status
        .as_ref()
        .and_then(|s| boot.realtime_of(s.inactive_exit_usec));
    if !pending_reboot(file.changed_usec, boot.realtime_usec, started) {
        return None;
    }
    Some(Reason {
        kind: ReasonKind::PendingReboot,
        text: format!(
            "the MachineConfig was written at {}, after this boot; unit {name} has not run since (this boot began at {}): the route comes with the next boot, or when the unit runs",
            file.written_at(),
            boot.at()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: u64 = 1_000_000_000;

    #[test]
    fn the_decision() {
        // Written after the boot, the unit never started: pending.
        assert!(pending_reboot(BOOT + 10, BOOT, None));
        // ... or started before the write (the old unit at boot): pending.
        assert!(pending_reboot(BOOT + 10, BOOT, Some(BOOT + 5)));
        // Started after the write (restarted by hand): not pending.
        assert!(!pending_reboot(BOOT + 10, BOOT, Some(BOOT + 11)));
        // Written before this boot: the boot ran the unit (or should have).
        assert!(!pending_reboot(BOOT - 10, BOOT, None));
        assert!(!pending_reboot(BOOT - 10, BOOT, Some(BOOT + 1)));
        // Written at the very instant of the boot: not after it.
        assert!(!pending_reboot(BOOT, BOOT, None));
    }

    #[test]
    fn written_after_boot_needs_both() {
        let file = ConfigFile {
            path: "/etc/machine-config-daemon/currentconfig".into(),
            changed_usec: BOOT + 1,
            image: None,
            from_node: true,
        };
        let boot = Boot {
            monotonic_usec: 1,
            realtime_usec: BOOT,
        };
        assert_eq!(written_after_boot(Some(&file), Some(boot)), Some(true));
        assert_eq!(written_after_boot(None, Some(boot)), None);
        assert_eq!(written_after_boot(Some(&file), None), None);
        let named = ConfigFile {
            from_node: false,
            ..file.clone()
        };
        assert_eq!(
            written_after_boot(Some(&named), Some(boot)),
            None,
            "a copy named on the command line"
        );
        let before = ConfigFile {
            changed_usec: BOOT - 1,
            ..file
        };
        assert_eq!(written_after_boot(Some(&before), Some(boot)), Some(false));
    }
}
