//! Compare stage: why an expected route (or rule, `rule_reasons.rs`) is not
//! present. Reasons come from a fixed set ([`ReasonKind`], the `reason` metric
//! label) and read as plain words.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::model::{ExpectedRoute, Manager, NextHop, Traits, UnitName};

use super::matching::HopDifference;
use super::units::{exit_text, UnitState, UnitVerdict};
use super::{find_link, unit, Observed, ObservedHop, RouteState};

/// The fixed set of reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasonKind {
    /// The unit that installs the route failed.
    UnitFailed,
    /// The unit did not run this boot (or a condition skipped it).
    UnitNotRun,
    /// The unit is disabled or masked.
    UnitDisabled,
    /// The unit does not exist.
    UnitNotFound,
    /// The unit's state is unknown (no D-Bus).
    UnitUnknown,
    /// NetworkManager, which keeps the route, is not active.
    NetworkManagerInactive,
    /// The route's device does not exist.
    DeviceMissing,
    /// The route's device is down or has no carrier.
    DeviceDown,
    /// Declared non-persistently and the device was re-activated after.
    NonPersistent,
    /// The keyfile that declares it has a mode NetworkManager refuses.
    KeyfileMode,
    /// Another route to the destination is there instead.
    DifferentRoute,
    /// Nothing above explains it.
    Unexplained,
    /// The unit command that adds the route failed, and the unit did not (a
    /// `-` prefix ignores the failure).
    CommandFailed,
    /// The MachineConfig was written after this boot and the unit that adds the
    /// route has not run since: it comes with the next boot.
    PendingReboot,
    /// The NetworkManager profile that declares it is not active on its device.
    ConnectionInactive,
    /// The connection applied to its device lacks it (`nmcli device modify`
    /// undone by a re-activation, a profile changed and not re-applied).
    NotInAppliedConnection,
    /// NetworkManager applied it and the kernel no longer has it.
    RemovedOutsideNetworkManager,
    /// NetworkManager does not manage its device.
    DeviceUnmanaged,
    /// A keyfile the MachineConfig writes that NetworkManager has not loaded.
    ProfileNotLoaded,
    /// Its gateway is on no connected subnet of its device: the kernel refuses it.
    GatewayUnreachable,
    /// The route's table is not main, local or default, and no kernel rule of
    /// its family looks it up: the route carries no traffic.
    NoRuleSelectsTable,
    /// An expected rule: another rule is in its place (at its priority, or with
    /// its selectors), pointing elsewhere.
    DifferentRule,
}

impl ReasonKind {
    /// Every kind, in label order.
    pub const ALL: [ReasonKind; 22] = [
        ReasonKind::UnitFailed,
        ReasonKind::UnitNotRun,
        ReasonKind::UnitDisabled,
        ReasonKind::UnitNotFound,
        ReasonKind::UnitUnknown,
        ReasonKind::NetworkManagerInactive,
        ReasonKind::DeviceMissing,
        ReasonKind::DeviceDown,
        ReasonKind::NonPersistent,
        ReasonKind::KeyfileMode,
        ReasonKind::DifferentRoute,
        ReasonKind::Unexplained,
        ReasonKind::CommandFailed,
        ReasonKind::PendingReboot,
        ReasonKind::ConnectionInactive,
        ReasonKind::NotInAppliedConnection,
        ReasonKind::RemovedOutsideNetworkManager,
        ReasonKind::DeviceUnmanaged,
        ReasonKind::ProfileNotLoaded,
        ReasonKind::GatewayUnreachable,
        ReasonKind::NoRuleSelectsTable,
        ReasonKind::DifferentRule,
    ];

    /// The metric label value.
    pub fn code(self) -> &'static str {
        match self {
            ReasonKind::UnitFailed => "unit-failed",
            ReasonKind::UnitNotRun => "unit-not-run",
            ReasonKind::UnitDisabled => "unit-disabled",
            ReasonKind::UnitNotFound => "unit-not-found",
            ReasonKind::UnitUnknown => "unit-unknown",
            ReasonKind::NetworkManagerInactive => "networkmanager-inactive",
            ReasonKind::DeviceMissing => "device-missing",
            ReasonKind::DeviceDown => "device-down",
            ReasonKind::NonPersistent => "non-persistent",
            ReasonKind::KeyfileMode => "keyfile-mode",
            ReasonKind::DifferentRoute => "different-route",
            ReasonKind::Unexplained => "unexplained",
            ReasonKind::CommandFailed => "command-failed",
            ReasonKind::PendingReboot => "pending-reboot",
            ReasonKind::ConnectionInactive => "connection-inactive",
            ReasonKind::NotInAppliedConnection => "not-in-applied-connection",
            ReasonKind::RemovedOutsideNetworkManager => "removed-outside-networkmanager",
            ReasonKind::DeviceUnmanaged => "device-unmanaged",
            ReasonKind::ProfileNotLoaded => "profile-not-loaded",
            ReasonKind::GatewayUnreachable => "gateway-unreachable",
            ReasonKind::NoRuleSelectsTable => "no-rule-selects-table",
            ReasonKind::DifferentRule => "different-rule",
        }
    }
}

/// One reason: its kind and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Kind.
    pub kind: ReasonKind,
    /// Plain words.
    pub text: String,
}

/// The reasons of one route. In JSON: `"reasons": [texts], "reason_codes": [codes]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reasons(pub Vec<Reason>);

impl Serialize for Reasons {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<&str> = self.0.iter().map(|r| r.text.as_str()).collect();
        let codes: Vec<&str> = self.0.iter().map(|r| r.kind.code()).collect();
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("reasons", &texts)?;
        map.serialize_entry("reason_codes", &codes)?;
        map.end()
    }
}

pub(super) fn reason(kind: ReasonKind, text: String) -> Reason {
    Reason { kind, text }
}

/// Every reason that applies to a route that is not present.
pub fn explain(
    r: &ExpectedRoute,
    state: RouteState,
    observed: &[ObservedHop],
    instead: Option<Reason>,
    seen: Observed<'_>,
    units: &[UnitVerdict],
) -> Vec<Reason> {
    let mut out = Vec::new();
    match instead {
        Some(why) => out.push(why),
        None if state == RouteState::Mismatched => out.push(different_route(observed)),
        None => {}
    }
    let asked = !matches!(seen.units, super::UnitsSeen::Skipped);
    if let Some(name) = r.source.unit.as_ref().filter(|_| asked) {
        out.extend(unit_reason(name, units));
        out.extend(command_failed(r, name, units));
    }
    if r.traits.manager != Manager::None {
        out.extend(networkmanager(units, "route"));
    }
    out.extend(device(r, seen));
    out.extend(keyfile_mode(&r.traits));
    // Facts (NetworkManager's view, the device's subnets) replace the inference
    // below where they answer, unless something above explains it already; a
    // failed command is no explanation of why it failed, so they follow it.
    if out
        .iter()
        .all(|x| matches!(x.kind, ReasonKind::DifferentRoute | ReasonKind::CommandFailed))
    {
        out.extend(super::facts::explain(r, seen, units).unwrap_or_default());
    }
    if out.is_empty() {
        out.push(super::unexplained::after_unit_ran(r, seen, units));
    }
    out
}

fn different_route(observed: &[ObservedHop]) -> Reason {
    let found: Vec<String> = observed.iter().map(ObservedHop::describe).collect();
    reason(
        ReasonKind::DifferentRoute,
        format!(
            "a route to this destination is in the table, but not this one (another type, gateway, device, metric or selector): {}",
            found.join("; ")
        ),
    )
}

/// A declared multipath route whose kernel route has other hops: the missing
/// and the undeclared ones, named (`device` names an interface index).
pub(super) fn different_hops(d: &HopDifference<'_>, device: impl Fn(u32) -> String) -> Reason {
    let mut parts = Vec::new();
    if !d.missing.is_empty() {
        let missing: Vec<String> = d.missing.iter().map(|h| h.describe()).collect();
        parts.push(format!("missing {}", missing.join(", ")));
    }
    if !d.extra.is_empty() {
        let extra: Vec<String> = d.extra.iter().map(|h| kernel_hop(h, &device)).collect();
        parts.push(format!("not declared {}", extra.join(", ")));
    }
    reason(
        ReasonKind::DifferentRoute,
        format!(
            "the multipath route is in the table, but not with the declared next hops: {}",
            parts.join("; ")
        ),
    )
}

/// `via GW dev DEV` of a kernel hop.
fn kernel_hop(h: &NextHop, device: impl Fn(u32) -> String) -> String {
    let mut parts = Vec::new();
    if let Some(gw) = h.gateway {
        parts.push(format!("via {gw}"));
    }
    if let Some(i) = h.ifindex {
        parts.push(format!("dev {}", device(i)));
    }
    parts.join(" ")
}

/// Another route comes first and drops the traffic.
pub(super) fn shadowed(by: &ObservedHop) -> Reason {
    reason(
        ReasonKind::DifferentRoute,
        format!(
            "the route is in the table, but a route that drops its traffic comes first: {}",
            by.describe()
        ),
    )
}

pub(super) fn unit_reason(name: &UnitName, units: &[UnitVerdict]) -> Option<Reason> {
    let v = unit(units, name)?;
    let status_words = v.status.as_ref().and_then(exit_text);
    Some(match v.state {
        UnitState::Ok | UnitState::Skipped => return None,
        UnitState::Inactive => reason(
            ReasonKind::UnitNotRun,
            format!(
                "unit {name} is not running ({})",
                v.active_state.as_ref().map(|a| a.as_str()).unwrap_or("inactive")
            ),
        ),
        UnitState::Failed => reason(
            ReasonKind::UnitFailed,
            match status_words {
                Some(w) => format!("unit {name} failed: {w}"),
                None => format!("unit {name} failed"),
            },
        ),
        UnitState::NotRun => reason(ReasonKind::UnitNotRun, not_run_text(name, v)),
        UnitState::Disabled => reason(
            ReasonKind::UnitDisabled,
            format!(
                "unit {name} is {}: it does not start at boot",
                v.unit_file_state.as_deref().unwrap_or("disabled")
            ),
        ),
        UnitState::NotFound => reason(
            ReasonKind::UnitNotFound,
            format!("unit {name} is not found on the node"),
        ),
        UnitState::Unknown => reason(
            ReasonKind::UnitUnknown,
            match v.unknown_reason {
                // The bus error is the systemd source's: said once, there.
                Some(_) => format!(
                    "state of unit {name} is unknown: systemd could not be asked (the systemd source says why)"
                ),
                None => format!("state of unit {name} is unknown: systemd did not report it"),
            },
        ),
    })
}

/// The unit's command that adds the route ran and failed while the unit did
/// not fail (its `-` prefix ignores the failure): the route was never added.
fn command_failed(r: &ExpectedRoute, name: &UnitName, units: &[UnitVerdict]) -> Option<Reason> {
    let exec = r.traits.exec.as_ref()?;
    let v = unit(units, name).filter(|v| v.state != UnitState::Failed)?;
    let cmd = v
        .status
        .as_ref()?
        .service
        .as_ref()?
        .commands
        .iter()
        .find(|c| c.property == exec.property && c.index == exec.index && c.failed())?;
    let how = match cmd.code {
        1 => format!("exited with status {}", cmd.status),
        _ => format!("was killed by signal {}", cmd.status),
    };
    let prefix = if exec.ignore_failure {
        ", ignored by its '-' prefix, so the unit succeeded"
    } else {
        ""
    };
    Some(reason(
        ReasonKind::CommandFailed,
        format!(
            "the command that adds it ({}=, {}) {how}{prefix}: the route was never added",
            exec.property, exec.origin
        ),
    ))
}

fn not_run_text(name: &UnitName, v: &UnitVerdict) -> String {
    let skipped = v
        .status
        .as_ref()
        .is_some_and(|s| !s.condition_result && s.condition_usec > 0);
    if skipped {
        format!("unit {name} did not run: a condition of the unit was not met")
    } else {
        format!("unit {name} has not run since boot")
    }
}

/// The keyfile that declares it (a route or a rule) has a mode NetworkManager
/// refuses.
pub(super) fn keyfile_mode(traits: &Traits) -> Option<Reason> {
    let (path, mode) = (traits.keyfile.as_ref()?, traits.refused_mode?);
    Some(reason(
        ReasonKind::KeyfileMode,
        format!("keyfile {path} has mode {mode:04o}: NetworkManager ignores it (it needs 0600)"),
    ))
}

/// NetworkManager is not active, and it installs this `what` (route, rule).
pub(super) fn networkmanager(units: &[UnitVerdict], what: &str) -> Option<Reason> {
    let nm = UnitName::new("NetworkManager.service").ok()?;
    let v = unit(units, &nm)?;
    if v.state == UnitState::Ok || !v.state.is_known() {
        return None;
    }
    let active = v
        .active_state
        .as_ref()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| "not found".into());
    Some(reason(
        ReasonKind::NetworkManagerInactive,
        format!("NetworkManager is not active ({active}), and it is what installs this {what}"),
    ))
}

fn device(r: &ExpectedRoute, seen: Observed<'_>) -> Option<Reason> {
    let dev = r.device.as_ref()?;
    seen.links?;
    let Some(link) = find_link(seen.links, dev) else {
        return Some(reason(
            ReasonKind::DeviceMissing,
            format!("device {dev} does not exist"),
        ));
    };
    if !link.up {
        return Some(reason(ReasonKind::DeviceDown, format!("device {dev} is down")));
    }
    if !link.carrier {
        return Some(reason(
            ReasonKind::DeviceDown,
            format!("device {dev} has no carrier"),
        ));
    }
    None
}
