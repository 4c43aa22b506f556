//! Daemon: keeping the [`RouteIndex`] current from kernel notifications, between
//! full dumps. Only routes whose key the intent names are held, so each event
//! costs O(log n) of the expected routes.

use std::collections::HashSet;

use crate::compare::RouteIndex;
use crate::model::{Family, ObservedRoute, RouteKey};

/// Apply an added route. `replace` (NLM_F_REPLACE) replaces the route with the
/// same key and metric; otherwise IPv6 merges next hops into a route with the
/// same metric (multipath routes grow one hop at a time), IPv4 keeps both.
pub fn add(index: &mut RouteIndex, wanted: &HashSet<RouteKey>, route: ObservedRoute, replace: bool) -> bool {
    if !wanted.contains(&route.key) {
        return false;
    }
    let key = route.key;
    let entries = index.entry(key);
    let same_metric = entries.iter().position(|r| r.metric == route.metric);
    match same_metric {
        Some(i) if replace => entries[i] = route,
        Some(i) if key.family == Family::Ipv6 => {
            for hop in route.next_hops {
                if !entries[i].next_hops.contains(&hop) {
                    entries[i].next_hops.push(hop);
                }
            }
        }
        _ if entries.contains(&route) => {}
        _ => entries.push(route),
    }
    true
}

/// Apply a deleted route: the exact route if held, else (IPv6) its next hops out
/// of the route with the same metric, else the first route with that metric.
pub fn remove(index: &mut RouteIndex, wanted: &HashSet<RouteKey>, route: &ObservedRoute) -> bool {
    if !wanted.contains(&route.key) {
        return false;
    }
    let key = route.key;
    let entries = index.entry(key);
    if let Some(i) = entries.iter().position(|r| r == route) {
        entries.remove(i);
    } else if let Some(i) = entries.iter().position(|r| r.metric == route.metric) {
        if key.family == Family::Ipv6 && entries[i].next_hops.len() > route.next_hops.len() {
            entries[i].next_hops.retain(|h| !route.next_hops.contains(h));
        } else {
            entries.remove(i);
        }
    }
    index.prune(&key);
    true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NextHop, Protocol};

    fn r(dest: &str, gw: &str, ifindex: u32, metric: Option<u32>) -> ObservedRoute {
        ObservedRoute {
            key: RouteKey::new(254, dest.parse().expect("net")),
            next_hops: vec![NextHop {
                gateway: Some(gw.parse().expect("ip")),
                ifindex: Some(ifindex),
            }],
            metric,
            protocol: Protocol(4),
        }
    }

    fn wanted(routes: &[&ObservedRoute]) -> HashSet<RouteKey> {
        routes.iter().map(|r| r.key).collect()
    }

    #[test]
    fn add_replace_remove() {
        let a = r("10.0.0.0/8", "1.1.1.1", 2, None);
        let w = wanted(&[&a]);
        let mut idx = RouteIndex::default();
        assert!(add(&mut idx, &w, a.clone(), false));
        assert!(add(&mut idx, &w, a.clone(), false));
        assert_eq!(idx.len(), 1, "a duplicate notification is not a second route");
        let b = r("10.0.0.0/8", "1.1.1.2", 2, None);
        add(&mut idx, &w, b.clone(), true);
        assert_eq!(idx.get(&a.key), std::slice::from_ref(&b));
        assert!(remove(&mut idx, &w, &b));
        assert!(idx.is_empty());
        assert!(
            !add(&mut idx, &w, r("10.9.0.0/16", "1.1.1.1", 2, None), false),
            "unwanted keys are not held"
        );
        assert!(idx.is_empty());
    }

    #[test]
    fn ipv6_multipath_grows_and_shrinks_by_hop() {
        let a = r("fd00::/64", "fd00::1", 2, Some(1024));
        let b = r("fd00::/64", "fd00::2", 3, Some(1024));
        let w = wanted(&[&a]);
        let mut idx = RouteIndex::default();
        add(&mut idx, &w, a.clone(), false);
        add(&mut idx, &w, b.clone(), false);
        assert_eq!(idx.get(&a.key)[0].next_hops.len(), 2);
        remove(&mut idx, &w, &b);
        assert_eq!(idx.get(&a.key), std::slice::from_ref(&a));
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
}
