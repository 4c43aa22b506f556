//! Compare stage: reasons from facts for an expected route or rule that is not
//! present, whatever declared it. NetworkManager's view says whether the profile
//! behind it is loaded and active, whether the connection applied to the device
//! holds it, and whether NetworkManager manages the device ([`Kept`]: the same
//! questions for a route and for a rule); the device's subnets say whether the
//! kernel can take a route's gateway at all (for routes NetworkManager does not
//! keep: it adds a direct route to an off-link gateway itself, so the kernel
//! takes those). Where these answer, they replace the inference from timestamps.

use super::reasons::{reason, Reason, ReasonKind};
use super::unexplained::{finished_usec, CLOCK_MARGIN_USEC};
use super::{find_link, Observed, RouteIndex, UnitVerdict};
use crate::model::{
    DeviceState, ExpectedRoute, ExpectedRule, Family, IfName, Manager, NmConnection, NmDevice, NmProfile,
    NmView, RouteKey, Source, SourceKind, Traits, UnitName,
};

/// What NetworkManager's view is asked about: a route or a rule it keeps.
struct Kept<'a> {
    /// `route` or `rule`.
    what: &'static str,
    traits: &'a Traits,
    /// The device whose connection holds it, when the declaration says.
    device: Option<&'a IfName>,
    /// The unit that declares it.
    unit: Option<&'a UnitName>,
    /// Whether a connection's settings hold it.
    held_by: &'a dyn Fn(&NmConnection) -> bool,
}

/// The reasons facts give, or None when they say nothing.
pub(super) fn explain(r: &ExpectedRoute, seen: Observed<'_>, units: &[UnitVerdict]) -> Option<Vec<Reason>> {
    let kept = kept_by_networkmanager(&r.traits, &r.sources);
    let gateway = gateway_unreachable(r, seen).filter(|_| !kept);
    let held_by = |c: &NmConnection| c.has_route(&r.destination, r.gateway, r.table);
    let route = Kept {
        what: "route",
        traits: &r.traits,
        device: r.device.as_ref(),
        unit: r.source.unit.as_ref(),
        held_by: &held_by,
    };
    let nm = seen
        .networkmanager
        .filter(|_| kept)
        .and_then(|view| networkmanager(&route, view, seen, units));
    let inactive = |n: &Reason| {
        matches!(
            n.kind,
            ReasonKind::ConnectionInactive | ReasonKind::DeviceUnmanaged | ReasonKind::ProfileNotLoaded
        )
    };
    match (nm, gateway) {
        (Some(n), _) if inactive(&n) => Some(vec![n]),
        (Some(n), Some(g)) if n.kind == ReasonKind::NotInAppliedConnection => Some(vec![n, g]),
        (_, Some(g)) => Some(vec![g]),
        (Some(n), None) => Some(vec![n]),
        (None, None) => None,
    }
}

/// The reason NetworkManager's view gives for a rule it keeps that is not
/// present, or None when it says nothing.
pub(super) fn explain_rule(r: &ExpectedRule, seen: Observed<'_>, units: &[UnitVerdict]) -> Option<Reason> {
    let view = seen
        .networkmanager
        .filter(|_| kept_by_networkmanager(&r.traits, &r.sources))?;
    let held_by = |c: &NmConnection| c.has_rule(r);
    let rule = Kept {
        what: "rule",
        traits: &r.traits,
        device: r.traits.device.as_ref(),
        unit: r.source.unit.as_ref(),
        held_by: &held_by,
    };
    networkmanager(&rule, view, seen, units)
}

/// NetworkManager keeps it: a NetworkManager form declares it, or its view does.
pub(crate) fn kept_by_networkmanager(traits: &Traits, sources: &[Source]) -> bool {
    traits.manager != Manager::None || sources.iter().any(|s| s.kind == SourceKind::NetworkManager)
}

/// The gateway is on none of the device's subnets of its family, no expected
/// host route to it is there, and the route is not `onlink`: the kernel refuses
/// the route. Said only when the device has an address of that family; without
/// one, something else keeps it unconfigured.
fn gateway_unreachable(r: &ExpectedRoute, seen: Observed<'_>) -> Option<Reason> {
    let (gw, dev) = (r.gateway?, r.device.as_ref()?);
    let link = find_link(seen.links, dev).filter(|_| !r.traits.onlink)?;
    if host_route(seen.routes, r.table, gw, link.index) {
        return None;
    }
    let family = Family::of(&gw);
    let subnets: Vec<String> = link
        .addresses
        .iter()
        .filter(|a| Family::of(&a.addr()) == family)
        .map(|a| a.trunc().to_string())
        .collect();
    if subnets.is_empty() || link.reaches(&gw) {
        return None;
    }
    Some(reason(
        ReasonKind::GatewayUnreachable,
        format!(
            "gateway {gw} is on no subnet of {dev} ({}): the kernel refuses a route through it",
            subnets.join(", ")
        ),
    ))
}

/// A route to exactly `gateway` out of `ifindex` in `table` is in the kernel (one
/// the intent declares too: only those are read).
fn host_route(routes: &RouteIndex, table: u32, gateway: std::net::IpAddr, ifindex: u32) -> bool {
    let key = RouteKey::new(table, ipnet::IpNet::from(gateway));
    routes
        .get(&key)
        .iter()
        .any(|r| r.next_hops.iter().any(|h| h.ifindex == Some(ifindex)))
}

/// What NetworkManager's view says of a route or rule it keeps. Its device is
/// the one the declaration names, else the one its profile is bound to.
fn networkmanager(k: &Kept<'_>, view: &NmView, seen: Observed<'_>, units: &[UnitVerdict]) -> Option<Reason> {
    let mut profile = k.traits.connection.as_deref().and_then(|uuid| view.profile(uuid));
    if let Some(path) = &k.traits.keyfile {
        match view.profile_from_file(path) {
            None => return Some(not_loaded(path, None)),
            Some(p) if !(k.held_by)(&p.settings) => return Some(not_loaded(path, Some(p))),
            Some(p) => profile = Some(p),
        }
    }
    let bound = || profile.and_then(|p| p.settings.interface_name.as_ref());
    let name = k.device.or_else(bound)?;
    let device = view.device(name)?;
    if !device.managed {
        return Some(reason(
            ReasonKind::DeviceUnmanaged,
            format!(
                "NetworkManager does not manage {name} (state {}): it installs none of its {}s",
                device.state, k.what
            ),
        ));
    }
    let applied = device
        .applied
        .as_ref()
        .filter(|_| device.state == DeviceState::ACTIVATED);
    let Some(applied) = applied else {
        return Some(inactive(profile, device));
    };
    if let Some(p) = profile.filter(|p| p.settings.uuid != applied.uuid) {
        return Some(reason(
            ReasonKind::ConnectionInactive,
            format!(
                "connection \"{}\" is not active on {name}: {name} runs connection \"{}\"",
                p.settings.id, applied.id
            ),
        ));
    }
    if (k.held_by)(applied) {
        return Some(reason(
            ReasonKind::RemovedOutsideNetworkManager,
            format!(
                "NetworkManager applied it on {name} (connection \"{}\") and the kernel no longer has it: \
                 it was deleted by hand or by another program, and NetworkManager adds it again only when \
                 the connection is re-applied (nmcli device reapply {name})",
                applied.id
            ),
        ));
    }
    Some(not_applied(k, applied, view, name, seen, units))
}

fn not_loaded(path: &str, loaded: Option<&NmProfile>) -> Reason {
    let text = match loaded {
        None => format!(
            "NetworkManager has not loaded keyfile {path}: it reads new and changed keyfiles on \
             nmcli connection reload (or load), not by itself"
        ),
        Some(p) => format!(
            "NetworkManager's connection \"{}\" from {path} lacks it: the file changed since \
             NetworkManager loaded it (nmcli connection reload)",
            p.settings.id
        ),
    };
    reason(ReasonKind::ProfileNotLoaded, text)
}

fn inactive(profile: Option<&NmProfile>, device: &NmDevice) -> Reason {
    let name = &device.interface;
    let who = match profile {
        Some(p) => format!("connection \"{}\" is not active on {name}", p.settings.id),
        None => format!("no connection is active on {name}"),
    };
    reason(
        ReasonKind::ConnectionInactive,
        format!("{who}: {name} is {} ({})", device.state, device.reason),
    )
}

/// The connection applied to the device lacks the route: say what undid it.
fn not_applied(
    k: &Kept<'_>,
    applied: &NmConnection,
    view: &NmView,
    name: &IfName,
    seen: Observed<'_>,
    units: &[UnitVerdict],
) -> Reason {
    let head = format!("the connection applied to {name} (\"{}\") lacks it", applied.id);
    let in_profile = view
        .profile(&applied.uuid)
        .is_some_and(|p| (k.held_by)(&p.settings));
    let text = if k.traits.non_persistent {
        let when = reactivated_after(k.unit, name, seen, units)
            .map(|s| format!(" {s} s after the unit ran"))
            .unwrap_or_default();
        format!("{head}: the nmcli device modify that added it was undone when {name} was re-activated{when}")
    } else if in_profile {
        format!(
            "{head}: connection \"{}\" has it but was not re-applied since it changed \
             (nmcli device reapply {name})",
            applied.id
        )
    } else {
        head
    };
    reason(ReasonKind::NotInAppliedConnection, text)
}

/// Seconds between the declaring unit finishing and the device's last
/// configuration, when the device was configured after, beyond the clock margin.
fn reactivated_after(
    declared_by: Option<&UnitName>,
    device: &IfName,
    seen: Observed<'_>,
    units: &[UnitVerdict],
) -> Option<u64> {
    let done = finished_usec(declared_by, units)?;
    let configured = find_link(seen.links, device)?.last_configured_usec?;
    (configured > done + CLOCK_MARGIN_USEC).then(|| (configured - done) / 1_000_000)
}

/// Whether a profile whose routes or rules are expected is active on its device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionVerdict {
    /// `connection.id`.
    pub connection: String,
    /// `connection.uuid`.
    pub uuid: String,
    /// The device it is to be active on.
    pub device: IfName,
    /// Active there; None while NetworkManager cannot be asked.
    pub active: Option<bool>,
}

/// One verdict per expected connection.
pub(super) fn connections(intent: &crate::model::Intent, view: Option<&NmView>) -> Vec<ConnectionVerdict> {
    intent
        .connections
        .iter()
        .map(|c| ConnectionVerdict {
            connection: c.connection.clone(),
            uuid: c.uuid.clone(),
            device: c.device.clone(),
            active: view.map(|v| {
                v.device(&c.device).is_some_and(|d| {
                    d.state == DeviceState::ACTIVATED && d.applied.as_ref().is_some_and(|a| a.uuid == c.uuid)
                })
            }),
        })
        .collect()
}
