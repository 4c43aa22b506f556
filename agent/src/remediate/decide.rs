//! Remediation, pure: for an expected route that is not present, the action
//! that puts it back through its owner, or why there is none. `dry-run` and
//! `on` decide alike; `check` shows the same decision.
//!
//! | reasons | owner | action |
//! | --- | --- | --- |
//! | `unit-failed`, `unit-not-run`, `command-failed`, `non-persistent`, `not-in-applied-connection`, `removed-outside-networkmanager`, `unexplained` | the unit that declares the route, NetworkManager active | restart the unit |
//! | `removed-outside-networkmanager`, `not-in-applied-connection` | NetworkManager alone (a profile) | re-apply the device's connection |
//! | `connection-inactive` | an autoconnect profile, its device known | activate the profile on it |
//! | anything in [`NEEDS_A_PERSON`], or a source down | - | none |

use crate::compare::{ReasonKind, RouteState, RouteVerdict, SourceState, Sources, UnitVerdict};
use crate::model::{ActionKind, ActiveState, ExpectedRoute, IfName, Manager, NmView, UnitName};

/// Reasons no restart or re-apply can fix: the cause needs a person. A route
/// with one of them is left alone whatever its other reasons say.
pub const NEEDS_A_PERSON: [ReasonKind; 12] = [
    ReasonKind::DeviceMissing,
    ReasonKind::DeviceDown,
    ReasonKind::KeyfileMode,
    ReasonKind::GatewayUnreachable,
    ReasonKind::PendingReboot,
    ReasonKind::UnitDisabled,
    ReasonKind::UnitNotFound,
    ReasonKind::UnitUnknown,
    ReasonKind::DeviceUnmanaged,
    ReasonKind::ProfileNotLoaded,
    ReasonKind::DifferentRoute,
    ReasonKind::NoRuleSelectsTable,
];

/// Reasons a restart of the route's unit fixes (its command adds the route).
/// `unexplained` too: the unit ran and the route went later, for no cause the
/// sources show (without NetworkManager's view, an `ip route del`); the unit is
/// still what adds it.
const UNIT_FIXES: [ReasonKind; 7] = [
    ReasonKind::UnitFailed,
    ReasonKind::UnitNotRun,
    ReasonKind::CommandFailed,
    ReasonKind::NonPersistent,
    ReasonKind::NotInAppliedConnection,
    ReasonKind::RemovedOutsideNetworkManager,
    ReasonKind::Unexplained,
];

/// Reasons a re-apply of the device's connection fixes (NetworkManager has the
/// route in the profile or the applied connection).
const REAPPLY_FIXES: [ReasonKind; 2] = [
    ReasonKind::RemovedOutsideNetworkManager,
    ReasonKind::NotInAppliedConnection,
];

/// What the decision looks at besides the route's verdict.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// How each source fared.
    pub sources: &'a Sources,
    /// The expected units' verdicts.
    pub units: &'a [UnitVerdict],
    /// NetworkManager's view, when it could be read.
    pub view: Option<&'a NmView>,
}

/// Whom an action is on, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A systemd unit.
    Unit(UnitName),
    /// A device NetworkManager manages (its applied connection).
    Device(IfName),
    /// A NetworkManager profile to activate on a device.
    Profile {
        /// `connection.uuid`.
        uuid: String,
        /// The device.
        device: IfName,
    },
}

/// One action on one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Restart, re-apply, activate.
    pub kind: ActionKind,
    /// The owner as labels name it: the unit, or `connection/<id>`.
    pub owner: String,
    /// How to reach it.
    pub target: Target,
}

/// The decision for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Act (once the guards allow), for this reason in words.
    Act(Action, String),
    /// Nothing is done, for this reason in words.
    Hold(String),
}

/// The decision for a route that is not present.
pub fn decide(v: &RouteVerdict, ctx: Context<'_>) -> Decision {
    if v.state == RouteState::Present {
        return Decision::Hold("the route is present".into());
    }
    if let Some(why) = source_down(ctx.sources) {
        return Decision::Hold(why);
    }
    let codes: Vec<ReasonKind> = v.reasons.0.iter().map(|r| r.kind).collect();
    if let Some(code) = codes.iter().find(|c| NEEDS_A_PERSON.contains(c)) {
        return Decision::Hold(format!(
            "nothing is done for {}: a restart or a re-apply does not fix that, a person does",
            code.code()
        ));
    }
    if codes.contains(&ReasonKind::NetworkManagerInactive) {
        return Decision::Hold(
            "nothing is done while NetworkManager is not active (networkmanager-inactive)".into(),
        );
    }
    let r = &v.expected;
    if let Some(unit) = unit_of(r) {
        return by_unit(r, unit, &codes, ctx);
    }
    if kept_by_networkmanager(r) {
        return by_networkmanager(r, &codes, ctx);
    }
    Decision::Hold(format!(
        "nothing is done for {}: no unit or profile declares it",
        words(&codes)
    ))
}

/// The owner of a route as labels name it, whatever its state: its unit, else
/// its NetworkManager connection; None when neither is known.
pub fn owner_of(r: &ExpectedRoute, view: Option<&NmView>) -> Option<String> {
    if let Some(unit) = unit_of(r) {
        return Some(unit.to_string());
    }
    kept_by_networkmanager(r).then_some(())?;
    connection_id(r, view).map(|id| format!("connection/{id}"))
}

fn source_down(sources: &Sources) -> Option<String> {
    let all = [
        ("machineconfig", &sources.machineconfig),
        ("netlink", &sources.netlink),
        ("systemd", &sources.systemd),
        ("networkmanager", &sources.networkmanager),
    ];
    all.iter().find_map(|(name, state)| match state {
        SourceState::Down(why) => Some(format!("nothing is done while the {name} source is down ({why})")),
        _ => None,
    })
}

fn by_unit(r: &ExpectedRoute, unit: &UnitName, codes: &[ReasonKind], ctx: Context<'_>) -> Decision {
    let Some(code) = codes.iter().find(|c| UNIT_FIXES.contains(c)) else {
        return Decision::Hold(format!(
            "nothing is done for {}: restarting unit {unit} is not known to fix it",
            words(codes)
        ));
    };
    if ctx.sources.systemd == SourceState::Skipped {
        return Decision::Hold(format!(
            "nothing is done: systemd is not asked (--no-units), so unit {unit} is not restarted"
        ));
    }
    if needs_networkmanager(r, ctx) && !networkmanager_active(ctx) {
        return Decision::Hold(format!(
            "unit {unit} is restarted once NetworkManager is active, not before"
        ));
    }
    let action = Action {
        kind: ActionKind::RestartUnit,
        owner: unit.to_string(),
        target: Target::Unit(unit.clone()),
    };
    Decision::Act(
        action,
        format!(
            "restart unit {unit}, whose command adds the route ({})",
            code.code()
        ),
    )
}

fn by_networkmanager(r: &ExpectedRoute, codes: &[ReasonKind], ctx: Context<'_>) -> Decision {
    let Some(view) = ctx.view else {
        return Decision::Hold(
            "nothing is done: NetworkManager's view is not read (--no-networkmanager)".into(),
        );
    };
    let Some(owner) = connection_id(r, Some(view)).map(|id| format!("connection/{id}")) else {
        return Decision::Hold("nothing is done: no NetworkManager profile is known to declare it".into());
    };
    let device = r.device.as_ref().filter(|d| view.device(d).is_some());
    if let Some(code) = codes.iter().find(|c| REAPPLY_FIXES.contains(c)) {
        let Some(device) = device else {
            return Decision::Hold("nothing is done: NetworkManager does not know its device".into());
        };
        let action = Action {
            kind: ActionKind::Reapply,
            owner,
            target: Target::Device(device.clone()),
        };
        let why = format!(
            "re-apply the connection on {device}, as nmcli device reapply does ({})",
            code.code()
        );
        return Decision::Act(action, why);
    }
    if codes.contains(&ReasonKind::ConnectionInactive) {
        return activate(r, owner, device, view);
    }
    Decision::Hold(format!(
        "nothing is done for {}: no NetworkManager action is known to fix it",
        words(codes)
    ))
}

fn activate(r: &ExpectedRoute, owner: String, device: Option<&IfName>, view: &NmView) -> Decision {
    let Some(profile) = profile(r, view) else {
        return Decision::Hold("nothing is done: the profile that declares it is not loaded".into());
    };
    let id = &profile.settings.id;
    if !profile.settings.autoconnect {
        return Decision::Hold(format!(
            "nothing is done: connection \"{id}\" does not autoconnect, so it is up only when a person brings it up"
        ));
    }
    let Some(device) = device
        .or(profile.settings.interface_name.as_ref())
        .filter(|d| view.device(d).is_some())
    else {
        return Decision::Hold(format!(
            "nothing is done: the device of connection \"{id}\" is not there"
        ));
    };
    let action = Action {
        kind: ActionKind::Activate,
        owner,
        target: Target::Profile {
            uuid: profile.settings.uuid.clone(),
            device: device.clone(),
        },
    };
    let why = format!(
        "activate connection \"{id}\" on {device}, as nmcli connection up does (connection-inactive)"
    );
    Decision::Act(action, why)
}

/// The unit whose command declares the route.
fn unit_of(r: &ExpectedRoute) -> Option<&UnitName> {
    r.source
        .unit
        .as_ref()
        .or_else(|| r.sources.iter().find_map(|s| s.unit.as_ref()))
}

/// NetworkManager keeps it: a NetworkManager form declares it, or its view does.
fn kept_by_networkmanager(r: &ExpectedRoute) -> bool {
    crate::compare::kept_by_networkmanager(&r.traits, &r.sources)
}

/// The unit talks to NetworkManager (nmcli), or NetworkManager is expected.
fn needs_networkmanager(r: &ExpectedRoute, ctx: Context<'_>) -> bool {
    r.traits.manager != Manager::None
        || ctx
            .units
            .iter()
            .any(|u| u.name.as_str() == "NetworkManager.service")
}

/// NetworkManager.service is active, by systemd; else NetworkManager answers.
fn networkmanager_active(ctx: Context<'_>) -> bool {
    match ctx
        .units
        .iter()
        .find(|u| u.name.as_str() == "NetworkManager.service")
    {
        Some(u) => u.active_state == Some(ActiveState::Active),
        None => ctx.sources.networkmanager == SourceState::Up,
    }
}

/// The profile that declares the route: by uuid, else by keyfile.
fn profile<'a>(r: &ExpectedRoute, view: &'a NmView) -> Option<&'a crate::model::NmProfile> {
    let by_uuid = r.traits.connection.as_deref().and_then(|uuid| view.profile(uuid));
    by_uuid.or_else(|| {
        r.traits
            .keyfile
            .as_deref()
            .and_then(|path| view.profile_from_file(path))
    })
}

/// The id of the connection that declares the route, else of the one applied
/// to its device.
fn connection_id(r: &ExpectedRoute, view: Option<&NmView>) -> Option<String> {
    let view = view?;
    if let Some(p) = profile(r, view) {
        return Some(p.settings.id.clone());
    }
    let device = view.device(r.device.as_ref()?)?;
    device.applied.as_ref().map(|a| a.id.clone())
}

fn words(codes: &[ReasonKind]) -> String {
    let names: Vec<&str> = codes.iter().map(|c| c.code()).collect();
    if names.is_empty() {
        "it".into()
    } else {
        names.join(", ")
    }
}
