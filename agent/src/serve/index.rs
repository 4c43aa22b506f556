//! Daemon: keeping the [`RouteIndex`] current from kernel notifications, between
//! full dumps, with the kernel's own semantics. Only routes whose key the intent
//! names are held, so each event costs O(log n) of the expected routes.
//!
//! Within a key, the kernel tells routes apart by their *slot*: the TOS (IPv4)
//! or source prefix (IPv6) and the metric. IPv4 keeps several routes per slot in
//! order: `add` and `prepend` go first, `append` last, and `replace` takes the
//! place of the first one. IPv6 merges gateway routes of one slot into one
//! multipath route (`append` adds a hop) and `replace` replaces the whole route;
//! where single and multipath routes share a slot, its dumps hide what lies
//! between siblings, so such changes ask for a re-read ([`Applied::Reread`]).

use std::collections::HashSet;

use crate::compare::RouteIndex;
use crate::model::{Family, ObservedRoute, RouteKey, RouteType};
use crate::observe::routes::{NexthopObject, NexthopTable};

/// How a notified route entered the table (the flags of its `RTM_NEWROUTE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// `NLM_F_REPLACE`: in place of the first route of its slot.
    Replace,
    /// `NLM_F_APPEND`: after the routes of its slot.
    Append,
    /// Neither (`add`, `prepend`): before the routes of its slot.
    First,
}

impl Insert {
    /// From the notification's flags.
    pub fn from_flags(replace: bool, append: bool) -> Insert {
        match (replace, append) {
            (true, _) => Insert::Replace,
            (false, true) => Insert::Append,
            (false, false) => Insert::First,
        }
    }
}

/// What applying a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Not a wanted route, or already held.
    Unchanged,
    /// The index changed.
    Changed,
    /// Only a re-read of the table tells what the kernel made of it: the index
    /// is left as it was.
    Reread,
}

/// Apply an added route.
pub fn add(index: &mut RouteIndex, wanted: &HashSet<RouteKey>, route: ObservedRoute, how: Insert) -> Applied {
    if !wanted.contains(&route.key) {
        return Applied::Unchanged;
    }
    let entries = index.entry(route.key);
    match route.key.family {
        Family::Ipv4 => add_ipv4(entries, route, how),
        Family::Ipv6 => add_ipv6(entries, route, how),
    }
}

/// A route through a next-hop object is the same route when its object is:
/// its hops may have changed with the object (a replayed or late notification).
fn same_object(entries: &mut [ObservedRoute], route: &ObservedRoute) -> Option<usize> {
    route.nhid?;
    entries
        .iter()
        .position(|r| r.slot() == route.slot() && r.nhid == route.nhid && r.kind == route.kind)
}

fn add_ipv4(entries: &mut Vec<ObservedRoute>, route: ObservedRoute, how: Insert) -> Applied {
    // The kernel refuses an exact duplicate of a route of the slot (and a
    // replace by one is a no-op): a replayed notification changes nothing.
    if entries.contains(&route) {
        return Applied::Unchanged;
    }
    if let Some(i) = same_object(entries, &route) {
        entries[i] = route;
        return Applied::Changed;
    }
    let slot = route.slot();
    let first = entries.iter().position(|r| r.slot() == slot);
    let last = entries.iter().rposition(|r| r.slot() == slot);
    match (how, first, last) {
        // A next-hop object that changed makes the kernel notify its routes as
        // replaced: one not held here is not a replace of the slot's first.
        (Insert::Replace, Some(_), _) if route.nhid.is_some() => return Applied::Reread,
        (Insert::Replace, Some(i), _) => entries[i] = route,
        (Insert::Append, _, Some(i)) => entries.insert(i + 1, route),
        (Insert::First, Some(i), _) => entries.insert(i, route),
        _ => entries.push(route),
    }
    Applied::Changed
}

/// A route the kernel merges with others of its slot into one multipath route:
/// unicast through gateways, without a next-hop object.
fn ecmp(route: &ObservedRoute) -> bool {
    route.kind == RouteType::Unicast
        && route.nhid.is_none()
        && !route.next_hops.is_empty()
        && route.next_hops.iter().all(|h| h.gateway.is_some())
}

/// IPv6 keeps the routes of a slot in one list in which multipath siblings and
/// single routes may interleave, and its dumps skip what lies between siblings
/// (so a dump may not show every route of a slot that holds a multipath route).
/// Only changes that leave no doubt are applied: a route into an empty slot, a
/// single route replaced by a single route of its kind, a gateway route joining
/// a lone gateway route. Anything else asks for a re-read.
fn add_ipv6(entries: &mut Vec<ObservedRoute>, route: ObservedRoute, how: Insert) -> Applied {
    if how != Insert::Replace {
        if let Some(i) = same_object(entries, &route) {
            entries[i] = route;
            return Applied::Changed;
        }
    }
    // A replace may leave two equal routes in a slot; anything else never does.
    if how != Insert::Replace && entries.contains(&route) {
        return Applied::Unchanged;
    }
    let slot = route.slot();
    let in_slot: Vec<usize> = (0..entries.len())
        .filter(|i| entries[*i].slot() == slot)
        .collect();
    let single = |r: &ObservedRoute| r.next_hops.len() <= 1;
    match (how, in_slot.as_slice()) {
        (_, []) => entries.push(route),
        (Insert::Replace, [only])
            if single(&entries[*only]) && single(&route) && ecmp(&route) == ecmp(&entries[*only]) =>
        {
            entries[*only] = route
        }
        (Insert::First | Insert::Append, [only])
            if single(&entries[*only]) && ecmp(&entries[*only]) && ecmp(&route) =>
        {
            let existing = &mut entries[*only];
            for hop in route.next_hops {
                if !existing.next_hops.contains(&hop) {
                    existing.next_hops.push(hop);
                }
            }
        }
        _ => return Applied::Reread,
    }
    Applied::Changed
}

/// Apply a deleted route: the exact route if held (or the route through the
/// same next-hop object), else the route of its slot and type holding its hops
/// (a multipath route, hops in another order). An IPv6 multipath route asks for
/// a re-read instead: its dump may have hidden routes of its slot, which its
/// removal shows. A route is never taken for another.
pub fn remove(index: &mut RouteIndex, wanted: &HashSet<RouteKey>, route: &ObservedRoute) -> Applied {
    if !wanted.contains(&route.key) {
        return Applied::Unchanged;
    }
    let key = route.key;
    let entries = index.entry(key);
    let holds = |r: &ObservedRoute| {
        r.slot() == route.slot()
            && r.kind == route.kind
            && r.nhid == route.nhid
            && route.next_hops.iter().all(|h| r.next_hops.contains(h))
    };
    let found = entries
        .iter()
        .position(|r| r == route)
        .or_else(|| same_object(entries, route))
        .or_else(|| entries.iter().position(holds));
    let applied = match found {
        Some(i) if key.family == Family::Ipv6 && entries[i].next_hops.len() > 1 => Applied::Reread,
        Some(i) => {
            entries.remove(i);
            Applied::Changed
        }
        None => Applied::Unchanged,
    };
    index.prune(&key);
    applied
}

/// What the kernel does, silently, when a link goes down: its IPv4 routes go.
/// Drops every held IPv4 route whose next hops all leave through `ifindex`.
pub fn link_down(index: &mut RouteIndex, wanted: &HashSet<RouteKey>, ifindex: u32) -> bool {
    let mut changed = false;
    for key in wanted.iter().filter(|k| k.family == Family::Ipv4) {
        let entries = index.entry(*key);
        let before = entries.len();
        entries.retain(|r| !r.next_hops.iter().all(|h| h.ifindex == Some(ifindex)) || r.next_hops.is_empty());
        changed |= entries.len() != before;
        index.prune(key);
    }
    changed
}

/// Apply a next-hop notification to `nexthops`, and what the kernel does,
/// silently for IPv4, when the object changes or goes: the routes using it
/// (directly or through a group holding it) forward through its new hops, or
/// are deleted. True when any was held.
///
/// Applying an object changes that object's entry only, so which groups hold it
/// is the same before and after: no copy of the table is needed. Routes through
/// no object, the usual case, cost a look-up per wanted key and nothing more.
pub fn nexthop_changed(
    index: &mut RouteIndex,
    wanted: &HashSet<RouteKey>,
    nexthops: &mut NexthopTable,
    object: NexthopObject,
    removed: bool,
) -> bool {
    let id = object.id;
    nexthops.apply(object, removed);
    let nexthops = &*nexthops;
    let uses = |r: &ObservedRoute| r.nhid.is_some_and(|n| nexthops.depends_on(n, id));
    let mut changed = false;
    for key in wanted {
        if !index.get(key).iter().any(uses) {
            continue;
        }
        changed = true;
        let entries = index.entry(*key);
        let held = std::mem::take(entries);
        *entries = held
            .into_iter()
            .filter_map(|r| {
                if uses(&r) {
                    nexthops.resolve(r, false)
                } else {
                    Some(r)
                }
            })
            .collect();
        index.prune(key);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NextHop, Protocol};
    use crate::observe::routes::Nexthop;

    fn r(dest: &str, gw: &str, ifindex: u32, metric: Option<u32>) -> ObservedRoute {
        let hop = NextHop {
            gateway: Some(gw.parse().expect("ip")),
            ifindex: Some(ifindex),
        };
        ObservedRoute::unicast(
            RouteKey::new(254, dest.parse().expect("net")),
            vec![hop],
            metric,
            Protocol(4),
        )
    }

    fn wanted(routes: &[&ObservedRoute]) -> HashSet<RouteKey> {
        routes.iter().map(|r| r.key).collect()
    }

    fn gateways(idx: &RouteIndex, key: &RouteKey) -> Vec<String> {
        idx.get(key)
            .iter()
            .map(|r| {
                let gws: Vec<String> = r
                    .next_hops
                    .iter()
                    .filter_map(|h| h.gateway.map(|g| g.to_string()))
                    .collect();
                format!(
                    "{}{}",
                    r.kind,
                    if gws.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", gws.join("+"))
                    }
                )
            })
            .collect()
    }

    #[test]
    fn add_replace_remove() {
        let a = r("10.0.0.0/8", "1.1.1.1", 2, None);
        let w = wanted(&[&a]);
        let mut idx = RouteIndex::default();
        assert_eq!(add(&mut idx, &w, a.clone(), Insert::First), Applied::Changed);
        add(&mut idx, &w, a.clone(), Insert::First);
        assert_eq!(idx.len(), 1, "a duplicate notification is not a second route");
        let b = r("10.0.0.0/8", "1.1.1.2", 2, None);
        add(&mut idx, &w, b.clone(), Insert::Replace);
        assert_eq!(idx.get(&a.key), std::slice::from_ref(&b));
        assert_eq!(remove(&mut idx, &w, &b), Applied::Changed);
        assert!(idx.is_empty());
        assert_eq!(
            add(&mut idx, &w, r("10.9.0.0/16", "1.1.1.1", 2, None), Insert::First),
            Applied::Unchanged,
            "unwanted keys are not held"
        );
        assert!(idx.is_empty());
    }

    #[test]
    fn ipv4_prepend_then_replace_replaces_the_first_of_the_slot() {
        // ip route add via .1; ip route prepend via .9; ip route replace via .8
        let one = r("10.0.0.0/8", "172.18.0.1", 2, None);
        let w = wanted(&[&one]);
        let mut idx = RouteIndex::default();
        add(&mut idx, &w, one.clone(), Insert::First);
        add(
            &mut idx,
            &w,
            r("10.0.0.0/8", "172.18.0.9", 2, None),
            Insert::First,
        );
        add(
            &mut idx,
            &w,
            r("10.0.0.0/8", "172.18.0.8", 2, None),
            Insert::Replace,
        );
        assert_eq!(
            gateways(&idx, &one.key),
            ["unicast 172.18.0.8", "unicast 172.18.0.1"]
        );
        add(
            &mut idx,
            &w,
            r("10.0.0.0/8", "172.18.0.7", 2, None),
            Insert::Append,
        );
        add(
            &mut idx,
            &w,
            r("10.0.0.0/8", "172.18.0.6", 2, Some(5)),
            Insert::Replace,
        );
        assert_eq!(
            gateways(&idx, &one.key),
            [
                "unicast 172.18.0.8",
                "unicast 172.18.0.1",
                "unicast 172.18.0.7",
                "unicast 172.18.0.6"
            ],
            "append goes last; a replace in another slot adds"
        );
    }

    #[test]
    fn a_blackhole_replacing_a_unicast_route_is_held() {
        let one = r("192.168.1.0/24", "172.18.0.1", 2, None);
        let w = wanted(&[&one]);
        let mut idx = RouteIndex::from_routes(vec![one.clone()]);
        let mut black = ObservedRoute::unicast(one.key, Vec::new(), None, Protocol(3));
        black.kind = RouteType::Blackhole;
        add(&mut idx, &w, black.clone(), Insert::Replace);
        assert_eq!(idx.get(&one.key), std::slice::from_ref(&black));
    }

    #[test]
    fn ipv6_applies_what_leaves_no_doubt_and_rereads_the_rest() {
        let a = r("fd00::/64", "fd00::1", 2, Some(1024));
        let b = r("fd00::/64", "fd00::2", 3, Some(1024));
        let w = wanted(&[&a]);
        let mut idx = RouteIndex::default();
        assert_eq!(add(&mut idx, &w, a.clone(), Insert::First), Applied::Changed);
        assert_eq!(
            add(
                &mut idx,
                &w,
                r("fd00::/64", "fd00::9", 2, Some(1024)),
                Insert::Replace
            ),
            Applied::Changed,
            "a lone route replaced"
        );
        assert_eq!(gateways(&idx, &a.key), ["unicast fd00::9"]);
        assert_eq!(
            add(&mut idx, &w, b.clone(), Insert::Append),
            Applied::Changed,
            "a gateway route joining a lone one"
        );
        assert_eq!(gateways(&idx, &a.key), ["unicast fd00::9+fd00::2"]);
        assert_eq!(
            remove(&mut idx, &w, &b),
            Applied::Reread,
            "a hop out of a multipath route: its dump may have hidden others"
        );
        assert_eq!(
            add(&mut idx, &w, a.clone(), Insert::Append),
            Applied::Reread,
            "a hop into a multipath route"
        );
        let mut device = ObservedRoute::unicast(a.key, a.next_hops.clone(), Some(1024), Protocol(4));
        device.next_hops[0].gateway = None;
        assert_eq!(add(&mut idx, &w, device, Insert::Append), Applied::Reread);
        assert_eq!(
            gateways(&idx, &a.key),
            ["unicast fd00::9+fd00::2"],
            "left as it was"
        );
        let mut other_slot = a.clone();
        other_slot.metric = Some(50);
        assert_eq!(
            add(&mut idx, &w, other_slot.clone(), Insert::First),
            Applied::Changed
        );
        assert_eq!(remove(&mut idx, &w, &other_slot), Applied::Changed);
    }

    #[test]
    fn link_down_drops_ipv4_routes_of_that_link() {
        let a = r("10.0.0.0/8", "1.1.1.1", 2, None);
        let b = r("10.1.0.0/16", "1.1.1.1", 3, None);
        let w = wanted(&[&a, &b]);
        let mut idx = RouteIndex::from_routes(vec![a.clone(), b.clone()]);
        assert!(link_down(&mut idx, &w, 2));
        assert_eq!(idx.get(&a.key), []);
        assert_eq!(idx.get(&b.key), std::slice::from_ref(&b));
        assert!(!link_down(&mut idx, &w, 2));
    }

    #[test]
    fn a_deleted_nexthop_object_takes_its_routes() {
        let hop = |gw: &str| {
            Nexthop::Hop(NextHop {
                gateway: Some(gw.parse().expect("ip")),
                ifindex: Some(2),
            })
        };
        let object = |id, nexthop| NexthopObject { id, nexthop };
        let before = NexthopTable::from_objects([
            object(10, hop("172.18.0.1")),
            object(11, hop("172.18.0.3")),
            object(20, Nexthop::Group(vec![10, 11])),
        ]);
        let mut a = r("10.1.0.0/16", "172.18.0.1", 2, None);
        a.nhid = Some(10);
        let mut b = r("10.2.0.0/16", "172.18.0.1", 2, None);
        b.nhid = Some(20);
        let w = wanted(&[&a, &b]);
        let mut idx =
            RouteIndex::from_routes([a.clone(), b.clone()].map(|r| before.resolve(r, true).expect("known")));
        assert_eq!(idx.get(&b.key)[0].next_hops.len(), 2);
        let mut table = before.clone();
        let unused = object(30, hop("172.18.0.9"));
        assert!(
            !nexthop_changed(&mut idx, &w, &mut table, unused, false),
            "no held route uses it"
        );
        assert!(nexthop_changed(
            &mut idx,
            &w,
            &mut table,
            object(11, hop("172.18.0.3")),
            true
        ));
        assert!(nexthop_changed(
            &mut idx,
            &w,
            &mut table,
            object(20, Nexthop::Group(vec![10])),
            false
        ));
        assert_eq!(idx.get(&b.key)[0].next_hops.len(), 1, "the group lost a member");
        assert_eq!(
            idx.get(&a.key),
            std::slice::from_ref(&before.resolve(a.clone(), true).expect("known"))
        );
        nexthop_changed(&mut idx, &w, &mut table, object(10, hop("172.18.0.1")), true);
        assert_eq!(
            idx.get(&a.key),
            [],
            "the route through the deleted object went with it"
        );
        nexthop_changed(&mut idx, &w, &mut table, object(20, Nexthop::Group(vec![])), true);
        assert!(idx.is_empty(), "both routes went with their objects: {idx:?}");
    }
}
