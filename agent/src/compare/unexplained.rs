//! Compare stage: the last word on a route that is not present when no unit,
//! device, keyfile or NetworkManager fact explains it: a non-persistent
//! declaration undone by a re-activation (from timestamps), or `unexplained`,
//! which says that no cause was found and what was checked, never that the
//! route was installed (it may never have been).

use crate::model::{ExpectedRoute, UnitName};

use super::reasons::{reason, Reason, ReasonKind};
use super::units::{UnitState, UnitVerdict};
use super::{find_link, unit, Observed};

/// The kernel stamps addresses in jiffies since boot, which run a fraction of a
/// second behind systemd's CLOCK_MONOTONIC (0.24 s measured on a booted node):
/// closer than this, the order of the two events is not known.
pub(super) const CLOCK_MARGIN_USEC: u64 = 1_000_000;

/// The unit ran fine and the device is up: the route was removed after. When the
/// declaration is non-persistent and the device was configured again after the
/// unit ran, that is the cause.
pub(super) fn after_unit_ran(r: &ExpectedRoute, seen: Observed<'_>, units: &[UnitVerdict]) -> Reason {
    let finished = finished_usec(r.source.unit.as_ref(), units);
    let configured = r
        .device
        .as_ref()
        .and_then(|d| find_link(seen.links, d))
        .and_then(|l| l.last_configured_usec);
    let how = match r.source.kind {
        crate::model::SourceKind::Nmcli => "nmcli device modify",
        _ => "ip route",
    };
    let dev = r
        .device
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_else(|| "its device".into());
    match (r.traits.non_persistent, finished, configured) {
        (true, Some(done), Some(conf)) if conf > done + CLOCK_MARGIN_USEC => reason(
            ReasonKind::NonPersistent,
            format!(
                "declared with non-persistent {how}, and {dev} was re-activated {} s after the unit ran: the route was lost then",
                (conf - done) / 1_000_000
            ),
        ),
        (true, Some(done), Some(conf)) if conf + CLOCK_MARGIN_USEC <= done => reason(
            ReasonKind::Unexplained,
            format!("the unit ran after {dev} was last configured, so the route was there; it was removed since (for example with ip route del), and nothing adds it again"),
        ),
        (true, _, _) => reason(
            ReasonKind::NonPersistent,
            format!("declared with non-persistent {how}: lost when {dev} is re-activated or the route is deleted, and nothing adds it again"),
        ),
        _ if r.source.unit.is_none() => reason(
            ReasonKind::Unexplained,
            format!(
                "no cause was found ({}): the file that declares it may not be applied yet (NetworkManager reads it on reload or when {dev} is activated), or the route was deleted since",
                checked(r, seen, units)
            ),
        ),
        _ => reason(
            ReasonKind::Unexplained,
            format!(
                "no cause was found ({}): the route may never have been added, or was deleted since (for example with ip route del)",
                checked(r, seen, units)
            ),
        ),
    }
}

/// When the unit's main process last exited (CLOCK_MONOTONIC), if it has.
pub(super) fn finished_usec(name: Option<&UnitName>, units: &[UnitVerdict]) -> Option<u64> {
    let v = unit(units, name?)?;
    let service = v.status.as_ref()?.service.as_ref()?;
    Some(service.exec_main_exit_usec).filter(|t| *t > 0)
}

/// What was looked at before saying that nothing explains a route.
fn checked(r: &ExpectedRoute, seen: Observed<'_>, units: &[UnitVerdict]) -> String {
    let mut facts = Vec::new();
    match r.source.unit.as_ref().map(|n| (n, unit(units, n))) {
        Some((n, Some(v))) if v.state == UnitState::Ok => facts.push(format!("unit {n} ran and succeeded")),
        Some((n, _)) => facts.push(format!("unit {n} not checked")),
        None => {}
    }
    match (r.device.as_ref(), seen.links) {
        (Some(d), Some(_)) => facts.push(format!("device {d} is up")),
        (Some(d), None) => facts.push(format!("device {d} not checked")),
        (None, _) => {}
    }
    if seen.networkmanager.is_some() {
        facts.push("NetworkManager gives no cause".into());
    }
    facts.push(format!(
        "no other route to {} in table {}",
        r.destination, r.table
    ));
    format!("checked: {}", facts.join(", "))
}
