//! Compare stage: when a kernel route is the expected one, and when it carries
//! the traffic. The rules, as the kernel applies them:
//!
//! - Same key (family, table, destination), same type (a `blackhole` is not a
//!   `unicast` route), same TOS (IPv4) and source prefix (IPv6 `from`): a route
//!   that selects only some traffic is a different route.
//! - Same metric when the intent names one (IPv6 0 is 1024, done by the intent).
//! - A route declared through a next-hop object (`nhid`) is that object's.
//! - For unicast routes, one next hop with the expected gateway (none when the
//!   intent names none: a device route is not a gateway route) and the expected
//!   device. The device is compared by name, strictly, except in one shape: the
//!   declared device became a port (of a bridge, a bond, or `ovs-system` as
//!   OVN-Kubernetes does with `br-ex`) and the route is on the device that now
//!   carries its addresses: the master itself, or an Open vSwitch device with an
//!   address on the gateway's subnet.
//! - A declared multipath route needs each declared hop (compared as above)
//!   among the kernel route's hops, and no hop the intent does not declare, in
//!   any order. Weights are not compared, nor the kernel's dead/linkdown hop
//!   flags, which the observation does not read.
//! - A matching route carries the traffic unless a route that drops it
//!   (`blackhole`, `unreachable`, `prohibit`, `throw`) of the same TOS/source has
//!   a lower metric, or the same metric and comes first.

use std::net::IpAddr;

use crate::model::{ExpectedHop, ExpectedRoute, IfName, Link, NextHop, ObservedRoute, RouteType};

/// What the kernel holds for an expected route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// A matching route that carries the traffic.
    Carries,
    /// A matching route, but this one comes first and drops its traffic.
    Shadowed(&'a ObservedRoute),
    /// No route matches.
    NoMatch,
}

/// Judge the kernel's routes with the expected route's key, in kernel order.
/// Present when any matching route carries the traffic; shadowed when every
/// matching route has a dropping route ahead (the one ahead of the best match
/// is named).
pub(crate) fn find<'a>(
    expected: &ExpectedRoute,
    candidates: &'a [ObservedRoute],
    links: Option<&[Link]>,
) -> Found<'a> {
    let mut best: Option<(u32, &'a ObservedRoute)> = None;
    for (at, matched) in candidates.iter().enumerate() {
        if !matches(expected, matched, links) {
            continue;
        }
        let Some(shadow) = shadow(candidates, at, matched) else {
            return Found::Carries;
        };
        if best.is_none_or(|(metric, _)| matched.kernel_metric() < metric) {
            best = Some((matched.kernel_metric(), shadow));
        }
    }
    match best {
        Some((_, shadow)) => Found::Shadowed(shadow),
        None => Found::NoMatch,
    }
}

/// The dropping route that takes the traffic of `candidates[at]`: of the same
/// TOS and source prefix, with a lower metric, or the same metric and ahead of
/// it; the lowest metric, then the first.
fn shadow<'a>(
    candidates: &'a [ObservedRoute],
    at: usize,
    matched: &ObservedRoute,
) -> Option<&'a ObservedRoute> {
    candidates
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            s.kind.drops()
                && s.tos == matched.tos
                && s.source == matched.source
                && (s.kernel_metric() < matched.kernel_metric()
                    || (s.kernel_metric() == matched.kernel_metric() && *i < at))
        })
        .min_by_key(|(i, s)| (s.kernel_metric(), *i))
        .map(|(_, s)| s)
}

/// The kernel route is the expected one.
fn matches(expected: &ExpectedRoute, c: &ObservedRoute, links: Option<&[Link]>) -> bool {
    let hops_ok = match expected.nhid {
        Some(id) => c.nhid == Some(id),
        None if expected.kind != RouteType::Unicast => true,
        None if expected.next_hops.is_empty() => c
            .next_hops
            .iter()
            .any(|h| hop_matches(expected.gateway, expected.device.as_ref(), h, links)),
        None => hop_difference(expected, c, links).is_none(),
    };
    same_place(expected, c) && hops_ok
}

/// The kernel route selects the same traffic at the same metric.
fn same_place(expected: &ExpectedRoute, c: &ObservedRoute) -> bool {
    let selects_same = c.kind == expected.kind && c.tos == expected.tos && c.source == expected.source_prefix;
    selects_same && expected.metric.is_none_or(|m| c.kernel_metric() == m)
}

fn hop_matches(
    gateway: Option<IpAddr>,
    device: Option<&IfName>,
    hop: &NextHop,
    links: Option<&[Link]>,
) -> bool {
    hop.gateway == gateway && device.is_none_or(|dev| device_matches(dev, hop.ifindex, gateway, links))
}

/// How a kernel route's hops differ from a declared multipath route's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HopDifference<'a> {
    /// Declared hops the kernel route lacks.
    pub missing: Vec<&'a ExpectedHop>,
    /// The kernel route's hops the intent does not declare.
    pub extra: Vec<&'a NextHop>,
}

/// The hops of `c` against the declared ones, order aside; None when they are
/// the same.
fn hop_difference<'a>(
    expected: &'a ExpectedRoute,
    c: &'a ObservedRoute,
    links: Option<&[Link]>,
) -> Option<HopDifference<'a>> {
    let same = |e: &ExpectedHop, h: &NextHop| hop_matches(e.gateway, e.device.as_ref(), h, links);
    let missing: Vec<&ExpectedHop> = expected
        .next_hops
        .iter()
        .filter(|e| !c.next_hops.iter().any(|h| same(e, h)))
        .collect();
    let extra: Vec<&NextHop> = c
        .next_hops
        .iter()
        .filter(|h| !expected.next_hops.iter().any(|e| same(e, h)))
        .collect();
    (!missing.is_empty() || !extra.is_empty()).then_some(HopDifference { missing, extra })
}

/// For a declared multipath route that no kernel route matches: how the hops
/// of the first kernel route in its place (same type, selectors and metric)
/// differ.
pub(crate) fn other_hops<'a>(
    expected: &'a ExpectedRoute,
    candidates: &'a [ObservedRoute],
    links: Option<&[Link]>,
) -> Option<HopDifference<'a>> {
    if expected.next_hops.is_empty() || expected.nhid.is_some() || expected.kind != RouteType::Unicast {
        return None;
    }
    candidates
        .iter()
        .filter(|c| same_place(expected, c))
        .find_map(|c| hop_difference(expected, c, links))
}

/// The hop leaves through the declared device, or through the device that took
/// over its addresses when it became a port. Without links nothing can be
/// compared, and nothing is refused.
fn device_matches(
    declared: &IfName,
    ifindex: Option<u32>,
    gateway: Option<IpAddr>,
    links: Option<&[Link]>,
) -> bool {
    let Some(links) = links else { return true };
    let by_index = |i: u32| links.iter().find(|l| l.index == i);
    let Some(hop) = ifindex.and_then(by_index) else {
        return false;
    };
    if &hop.name == declared {
        return true;
    }
    let Some(port) = links.iter().find(|l| &l.name == declared) else {
        return false;
    };
    let Some(master) = port.master else {
        return false;
    };
    if master == hop.index {
        return true;
    }
    let is_ovs = |l: &Link| l.kind.as_deref() == Some("openvswitch");
    let carries = match gateway {
        Some(gw) => hop.reaches(&gw),
        None => !hop.addresses.is_empty(),
    };
    by_index(master).is_some_and(is_ovs) && is_ovs(hop) && carries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Protocol, RouteKey, Source, SourceKind, Traits};

    fn expected(dest: &str, gw: Option<&str>, dev: Option<&str>) -> ExpectedRoute {
        let destination: ipnet::IpNet = dest.parse().expect("net");
        ExpectedRoute {
            family: Family::of_net(&destination),
            destination,
            kind: RouteType::Unicast,
            gateway: gw.map(|g| g.parse().expect("ip")),
            device: dev.map(|d| IfName::new(d).expect("name")),
            table: 254,
            metric: None,
            tos: 0,
            source_prefix: None,
            nhid: None,
            next_hops: Vec::new(),
            source: Source {
                kind: SourceKind::IpRoute,
                origin: "test".into(),
                unit: None,
            },
            sources: Vec::new(),
            notes: Vec::new(),
            traits: Traits::default(),
        }
    }

    fn observed(dest: &str, gw: Option<&str>, ifindex: u32) -> ObservedRoute {
        crate::compare::tests::route(dest, gw, ifindex, None)
    }

    fn link(index: u32, name: &str, kind: &str, master: Option<u32>, addrs: &[&str]) -> Link {
        let mut l = Link::new(index, IfName::new(name).expect("name"), true, true);
        l.kind = Some(kind.to_owned());
        l.master = master;
        l.addresses = addrs.iter().map(|a| a.parse().expect("net")).collect();
        l
    }

    fn links() -> Vec<Link> {
        vec![
            link(2, "ens5", "veth", None, &["172.18.0.2/16"]),
            link(3, "ens6", "veth", None, &["172.19.0.2/16"]),
        ]
    }

    fn found(e: &ExpectedRoute, c: &[ObservedRoute], l: &[Link]) -> bool {
        find(e, c, Some(l)) == Found::Carries
    }

    #[test]
    fn the_device_is_compared() {
        let e = expected("10.50.0.0/16", None, Some("ens5"));
        assert!(found(&e, &[observed("10.50.0.0/16", None, 2)], &links()));
        assert!(
            !found(&e, &[observed("10.50.0.0/16", None, 3)], &links()),
            "another device"
        );
        assert!(
            !found(&e, &[observed("10.50.0.0/16", Some("172.19.0.1"), 3)], &links()),
            "a gateway route on another device"
        );
        assert!(
            !found(&e, &[observed("10.50.0.0/16", Some("172.18.0.1"), 2)], &links()),
            "a device route is not a gateway route"
        );
        let gw = expected("2001:db8::/64", Some("fe80::1"), Some("ens5"));
        assert!(!found(
            &gw,
            &[observed("2001:db8::/64", Some("fe80::1"), 3)],
            &links()
        ));
        let mut renamed = links();
        renamed[0].name = IfName::new("ens9").expect("name");
        assert!(
            !found(&e, &[observed("10.50.0.0/16", None, 2)], &renamed),
            "renamed away"
        );
        assert!(
            find(&e, &[observed("10.50.0.0/16", None, 3)], None) == Found::Carries,
            "no links: not compared"
        );
    }

    #[test]
    fn a_port_s_route_may_be_on_the_device_that_took_its_addresses() {
        let e = expected("10.60.0.0/16", Some("172.18.0.1"), Some("ens5"));
        let ovn = vec![
            link(2, "ens5", "veth", Some(7), &[]),
            link(7, "ovs-system", "openvswitch", None, &[]),
            link(8, "br-ex", "openvswitch", None, &["172.18.0.2/16"]),
            link(9, "br-int", "openvswitch", None, &[]),
        ];
        assert!(
            found(&e, &[observed("10.60.0.0/16", Some("172.18.0.1"), 8)], &ovn),
            "br-ex"
        );
        assert!(
            !found(&e, &[observed("10.60.0.0/16", Some("172.18.0.1"), 9)], &ovn),
            "an OVS device without the gateway's subnet"
        );
        let bridged = vec![
            link(2, "ens5", "veth", Some(5), &[]),
            link(5, "br0", "bridge", None, &["172.18.0.2/16"]),
            link(3, "ens6", "veth", None, &["172.18.0.3/16"]),
        ];
        assert!(
            found(&e, &[observed("10.60.0.0/16", Some("172.18.0.1"), 5)], &bridged),
            "its bridge"
        );
        assert!(
            !found(&e, &[observed("10.60.0.0/16", Some("172.18.0.1"), 3)], &bridged),
            "not any device on the subnet"
        );
        assert!(
            !found(&e, &[observed("10.60.0.0/16", Some("172.18.0.1"), 5)], &links()),
            "not when the declared device is no port"
        );
    }

    /// A route to 10.90.0.0/16 declared with hops via 172.18.0.1 dev ens5 and
    /// via 172.19.0.1 dev ens6.
    fn multipath() -> ExpectedRoute {
        let mut e = expected("10.90.0.0/16", Some("172.18.0.1"), Some("ens5"));
        let hop = |gw: &str, dev: &str| ExpectedHop {
            gateway: Some(gw.parse().expect("ip")),
            device: Some(IfName::new(dev).expect("name")),
            weight: None,
        };
        e.next_hops = vec![hop("172.18.0.1", "ens5"), hop("172.19.0.1", "ens6")];
        e
    }

    /// A kernel route to 10.90.0.0/16 with `(gateway, ifindex)` hops.
    fn kernel(hops: &[(&str, u32)]) -> ObservedRoute {
        let hops = hops
            .iter()
            .map(|(gw, i)| NextHop {
                gateway: Some(gw.parse().expect("ip")),
                ifindex: Some(*i),
            })
            .collect();
        ObservedRoute::unicast(
            RouteKey::new(254, "10.90.0.0/16".parse().expect("net")),
            hops,
            None,
            Protocol(4),
        )
    }

    #[test]
    fn a_multipath_route_needs_every_declared_hop_and_no_other() {
        let e = multipath();
        let both = kernel(&[("172.18.0.1", 2), ("172.19.0.1", 3)]);
        assert!(found(&e, &[both], &links()), "every hop");
        let swapped = kernel(&[("172.19.0.1", 3), ("172.18.0.1", 2)]);
        assert!(
            found(&e, std::slice::from_ref(&swapped), &links()),
            "in another order"
        );
        assert_eq!(other_hops(&e, &[swapped], Some(&links())), None);
        let one = kernel(&[("172.18.0.1", 2)]);
        assert!(
            !found(&e, std::slice::from_ref(&one), &links()),
            "one hop missing"
        );
        let d = other_hops(&e, std::slice::from_ref(&one), Some(&links())).expect("differs");
        assert_eq!((d.missing, d.extra.len()), (vec![&e.next_hops[1]], 0));
        let three = kernel(&[("172.18.0.1", 2), ("172.19.0.1", 3), ("172.19.0.9", 3)]);
        assert!(!found(&e, std::slice::from_ref(&three), &links()), "one hop more");
        let d = other_hops(&e, std::slice::from_ref(&three), Some(&links())).expect("differs");
        assert_eq!((d.missing.len(), d.extra), (0, vec![&three.next_hops[2]]));
        let moved = kernel(&[("172.18.0.1", 2), ("172.19.0.1", 2)]);
        assert!(!found(&e, &[moved], &links()), "a hop on another device");
    }

    #[test]
    fn a_route_of_one_hop_is_present_on_any_of_the_kernel_s_hops() {
        let e = expected("10.90.0.0/16", Some("172.18.0.1"), Some("ens5"));
        let both = kernel(&[("172.19.0.1", 3), ("172.18.0.1", 2)]);
        assert!(found(&e, std::slice::from_ref(&both), &links()));
        assert_eq!(other_hops(&e, &[both], Some(&links())), None);
    }

    #[test]
    fn types_tos_and_source_prefixes_select_other_traffic() {
        let e = expected("10.12.0.0/16", None, Some("ens5"));
        let mut tos = observed("10.12.0.0/16", None, 2);
        tos.tos = 0x10;
        assert!(!found(&e, &[tos], &links()));
        let e6 = expected("2001:db8:1::/64", None, Some("ens5"));
        let mut from = observed("2001:db8:1::/64", None, 2);
        from.source = Some("2001:db8:9::/64".parse().expect("net"));
        assert!(!found(&e6, &[from], &links()));
        let mut black = expected("10.4.0.0/16", None, None);
        black.kind = RouteType::Blackhole;
        let mut kernel = ObservedRoute::unicast(
            RouteKey::new(254, "10.4.0.0/16".parse().expect("net")),
            Vec::new(),
            None,
            Protocol(3),
        );
        assert!(
            !found(&black, &[kernel.clone()], &links()),
            "unicast is not blackhole"
        );
        kernel.kind = RouteType::Blackhole;
        assert!(found(&black, &[kernel], &links()));
    }

    #[test]
    fn a_dropping_route_ahead_shadows() {
        let e = expected("192.168.1.0/24", Some("172.18.0.1"), Some("ens5"));
        let mut good = observed("192.168.1.0/24", Some("172.18.0.1"), 2);
        good.metric = Some(100);
        let mut black = ObservedRoute::unicast(good.key, Vec::new(), Some(10), Protocol(3));
        black.kind = RouteType::Blackhole;
        let both = [good.clone(), black.clone()];
        assert!(
            matches!(find(&e, &both, Some(&links())), Found::Shadowed(s) if s.kind == RouteType::Blackhole)
        );
        black.metric = Some(200);
        assert!(
            found(&e, &[good.clone(), black.clone()], &links()),
            "a higher metric does not"
        );
        black.metric = Some(100);
        assert!(
            found(&e, &[good.clone(), black.clone()], &links()),
            "same metric, after it"
        );
        assert!(
            !found(&e, &[black.clone(), good.clone()], &links()),
            "same metric, before it"
        );
        black.tos = 0x10;
        black.metric = Some(1);
        assert!(
            found(&e, &[black, good], &links()),
            "another TOS selects other traffic"
        );
    }
}
