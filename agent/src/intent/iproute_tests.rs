//! Tests of the `ip route` reader. Every expectation here was checked against
//! iproute2 6.1 and the kernel (`agent/tests/intent_vs_kernel.rs` runs such
//! lines with the real `ip` in a namespace and compares).

use super::*;

fn parse(line: &str) -> Outcome {
    let words: Vec<String> = line.split_whitespace().map(String::from).collect();
    parse_command(&words, &Tables::default())
}

fn command(line: &str) -> Command {
    match parse(line) {
        Outcome::Route(c) => c,
        other => panic!("{line}: {other:?}"),
    }
}

fn route(line: &str) -> RouteSpec {
    command(line).route
}

#[test]
fn full_and_abbreviated() {
    let r = route("ip route add 192.168.1.0/24 via 172.18.0.1 dev ens5 table 200 metric 50");
    assert_eq!(r.destination.to_string(), "192.168.1.0/24");
    assert_eq!(r.gateway.map(|g| g.to_string()), Some("172.18.0.1".into()));
    assert_eq!(r.device.as_ref().map(IfName::as_str), Some("ens5"));
    assert_eq!((r.table, r.metric), (Some(200), Some(50)));
    let r = route("/usr/sbin/ip -4 r a 10.0.0.0/8 dev eth0 proto static scope link");
    assert_eq!((r.gateway, r.table, r.metric), (None, None, None));
    let r = route("ip ro replace to default via 10.0.0.1 table main");
    assert_eq!(
        (r.destination.to_string(), r.table),
        ("0.0.0.0/0".into(), Some(254))
    );
    let r = route("ip -6 route append 2001:db8::/64 via inet6 fe80::1 dev eth0 pref high");
    assert_eq!(r.destination.to_string(), "2001:db8::/64");
    let r = route("ip -6 route add default dev eth0");
    assert_eq!(r.destination.to_string(), "::/0");
}

#[test]
fn keywords_abbreviate_in_iproute2_s_order() {
    let r = route("ip route add 10.1.0.0/16 dev ens5 tab 200 met 5");
    assert_eq!((r.table, r.metric), (Some(200), Some(5)));
    assert_eq!(route("ip route add 10.1.0.0/16 dev ens5 pri 7").metric, Some(7));
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 p 7").metric,
        Some(7),
        "p is priority"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 m 9").metric,
        Some(9),
        "m is metric"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 t 300").table,
        Some(300),
        "t is table"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 pre high").metric,
        None,
        "pre is pref (IPv6 router preference), not preference"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 preference 3").metric,
        Some(3)
    );
    let r = route("ip route add 10.1.0.0/16 dev ens5 mtu lock 1400 window lock 5 s 5 r 5 w 5 pro 5");
    assert_eq!(
        r.metric, None,
        "metrics with lock, ssthresh, reordering, window, protocol"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 d 0x10").tos,
        0x10,
        "d is dsfield"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 tos 10").tos,
        0x10,
        "TOS is hexadecimal"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 metric 5 metric 6").metric,
        Some(6),
        "the last wins"
    );
    assert!(matches!(
        parse("ip route add 10.1.0.0/16 dev ens5 e 5"),
        Outcome::Problem(_)
    ));
    assert!(matches!(
        parse("ip route add 10.1.0.0/16 dev ens5 ex 5"),
        Outcome::Problem(_)
    ));
}

#[test]
fn global_options() {
    let r = route("ip --family inet6 route add 2001:db8::/64 dev ens5");
    assert_eq!(r.destination.to_string(), "2001:db8::/64");
    assert!(matches!(
        parse("ip -fam inet route add 2001:db8::/64 dev ens5"),
        Outcome::Problem(_)
    ));
    assert!(matches!(
        parse("ip -l 3 -s -d route add 10.0.0.0/8 dev eth0"),
        Outcome::Route(_)
    ));
    for netns in ["-n x", "-ne x", "--netns x", "-netns=x"] {
        assert!(
            matches!(parse(&format!("ip {netns} route add 10.0.0.0/8 dev eth0")), Outcome::Problem(p) if p.contains("namespace")),
            "{netns}"
        );
    }
    assert!(matches!(parse("ip -b /tmp/f"), Outcome::Problem(_)));
    assert_eq!(parse("ip -n x link set eth0 up"), Outcome::NotRoute);
    assert_eq!(parse("ip -n x route show"), Outcome::NotRoute);
    assert_eq!(parse("ip -0 link show"), Outcome::NotRoute);
}

#[test]
fn numbers_and_addresses_as_iproute2_reads_them() {
    assert_eq!(
        route("ip route add 10.010/16 dev ens5").destination.to_string(),
        "10.8.0.0/16",
        "a leading 0 is octal"
    );
    assert_eq!(
        route("ip route add 0x0a.11/16 dev ens5").destination.to_string(),
        "10.11.0.0/16"
    );
    assert_eq!(
        route("ip route add 10.30.0.0/020 dev ens5")
            .destination
            .to_string(),
        "10.30.0.0/16"
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 table 0x10").table,
        Some(16)
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 table 010").table,
        Some(8)
    );
    assert_eq!(
        route("ip route add 10.1.0.0/16 dev ens5 metric 0x10").metric,
        Some(16)
    );
    assert!(
        matches!(parse("ip route add 10.15.08.0/24 dev ens5"), Outcome::Problem(_)),
        "08 is no octal"
    );
    assert_eq!(number("0"), Some(0));
    assert_eq!(number("019"), None);
    assert_eq!(number(""), None);
}

#[test]
fn host_bits_are_refused_for_ipv4_and_cleared_for_ipv6() {
    assert!(matches!(
        parse("ip route add 10.3.0.1/16 dev ens5"),
        Outcome::Refused(_)
    ));
    assert!(matches!(
        parse("ip route del 10.3.0.1/16 dev ens5"),
        Outcome::Refused(_)
    ));
    assert_eq!(
        route("ip -6 route add 2001:db8::1/64 dev ens5")
            .destination
            .to_string(),
        "2001:db8::/64"
    );
    assert_eq!(
        route("ip route add 10.3.0.1 dev ens5").destination.to_string(),
        "10.3.0.1/32"
    );
}

#[test]
fn typed_routes_and_their_tables() {
    let r = route("ip route add blackhole 10.4.0.0/16");
    assert_eq!((r.kind, r.table), (RouteType::Blackhole, None));
    assert_eq!(
        route("ip route add u 10.5.0.0/16 metric 3").kind,
        RouteType::Unreachable
    );
    assert_eq!(
        route("ip route add prohibit 10.5.0.0/16").kind,
        RouteType::Prohibit
    );
    assert_eq!(
        route("ip route add throw 10.5.0.0/16 table 200").kind,
        RouteType::Throw
    );
    let r = route("ip route add local 10.6.0.0/16 dev lo");
    assert_eq!((r.kind, r.table), (RouteType::Local, Some(TABLE_LOCAL)));
    assert_eq!(
        route("ip route add b 10.16.0.0/16 dev ens5").kind,
        RouteType::Broadcast
    );
    assert_eq!(
        route("ip route add to unicast 10.31.0.0/16 dev ens5").kind,
        RouteType::Unicast
    );
    assert!(command("ip route add blackhole 10.4.0.0/16").kind_named);
    assert!(!command("ip route del 10.4.0.0/16").kind_named);
}

#[test]
fn via_inet6_for_an_ipv4_route() {
    let r = route("ip route add 10.6.0.0/16 via inet6 fe80::1 dev ens5");
    assert_eq!(r.destination.to_string(), "10.6.0.0/16");
    assert_eq!(r.gateway.map(|g| g.to_string()), Some("fe80::1".into()));
    assert!(matches!(
        parse("ip route add 10.0.0.0/8 via fe80::1"),
        Outcome::Problem(_)
    ));
}

#[test]
fn verbs_and_selectors() {
    let verb = |l: &str| command(l).verb;
    assert_eq!(verb("ip route add 10.0.0.0/8 dev eth0"), Verb::Add);
    assert_eq!(verb("ip route prepend 10.0.0.0/8 dev eth0"), Verb::Add);
    assert_eq!(verb("ip route ap 10.0.0.0/8 dev eth0"), Verb::Append);
    assert_eq!(verb("ip route r 10.0.0.0/8 dev eth0"), Verb::Replace);
    assert_eq!(verb("ip route c 10.0.0.0/8 dev eth0"), Verb::Change);
    assert_eq!(verb("ip route chg 10.0.0.0/8 dev eth0"), Verb::Change);
    assert_eq!(verb("ip route del 10.0.0.0/8"), Verb::Delete);
    let r = route("ip -6 route add 2001:db8:1::/64 from 2001:db8:9::/64 dev ens5");
    assert_eq!(
        r.source_prefix.map(|p| p.to_string()),
        Some("2001:db8:9::/64".into())
    );
    assert_eq!(route("ip route add 10.32.0.0/16 nhid 5").nhid, Some(5));
    assert!(matches!(
        parse("ip route add 10.32.0.0/16 via 172.18.0.1 nhid 5"),
        Outcome::Problem(_)
    ));
}

#[test]
fn not_routes() {
    assert_eq!(parse("ip link set eth0 up"), Outcome::NotRoute);
    assert_eq!(parse("ip rule add from 1.2.3.4 table 100"), Outcome::NotRoute);
    assert_eq!(parse("ip route show"), Outcome::NotRoute);
    assert_eq!(parse("ip route test 10.0.0.0/8 dev eth0"), Outcome::NotRoute);
}

#[test]
fn problems() {
    let p = |l| matches!(parse(l), Outcome::Problem(_));
    assert!(p("ip route add 10.0.0.0/8 via 1.2.3.4 table vpn"));
    assert!(p("ip route add 10.0.0.0/8 bogus 1"));
    assert!(p("ip route add 10.0.0.0/33 dev eth0"));
    assert!(p("ip route add 10.0.0.0/8 via"));
    assert!(p("ip route add"));
    assert!(p("ip -6 route add 10.0.0.0/8 dev eth0"));
    assert!(p("ip route add 10.0.0.0/8 dev eth0 vrf blue"));
    assert!(p("ip route add 10.0.0.0/8 encap mpls 200 dev eth0"));
    assert!(p("ip route add 10.0.0.0/8 dev eth0 tos lowdelay"));
}

/// `via GW dev DEV [weight W]` of each declared hop.
fn hops(r: &RouteSpec) -> Vec<String> {
    r.next_hops
        .iter()
        .map(|h| {
            let weight = h.weight.map(|w| format!(" weight {w}")).unwrap_or_default();
            format!("{}{weight}", h.describe())
        })
        .collect()
}

#[test]
fn multipath_keeps_every_hop_the_first_as_the_route_s() {
    let r = route(
        "ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a weight 1 nexthop via 10.0.0.2 dev b weight 3",
    );
    assert_eq!(r.gateway.map(|g| g.to_string()), Some("10.0.0.1".into()));
    assert_eq!(r.device.as_ref().map(IfName::as_str), Some("a"));
    assert_eq!(
        hops(&r),
        ["via 10.0.0.1 dev a weight 1", "via 10.0.0.2 dev b weight 3"]
    );
    assert_eq!(r.notes.len(), 1);
    assert!(r.notes[0].contains("these hops and no other"), "{:?}", r.notes);
    let r = route("ip -6 route add 2001:db8::/64 nexthop via fe80::1 dev a nexthop dev b nexthop via inet6 fe80::3 dev c");
    assert_eq!(hops(&r), ["via fe80::1 dev a", "dev b", "via fe80::3 dev c"]);
    let r = route("ip route add 10.9.0.0/16 nexthop via inet6 fe80::1 dev a nexthop via 10.0.0.2 dev b");
    assert_eq!(hops(&r), ["via fe80::1 dev a", "via 10.0.0.2 dev b"]);
}

#[test]
fn one_nexthop_is_a_route_of_one_hop() {
    let r = route("ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a weight 2");
    assert_eq!(r.gateway.map(|g| g.to_string()), Some("10.0.0.1".into()));
    assert!(r.next_hops.is_empty());
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn bad_multipath_hops_are_problems() {
    let p = |line: &str| matches!(parse(line), Outcome::Problem(_));
    assert!(p(
        "ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a weight 0 nexthop dev b"
    ));
    assert!(p(
        "ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a weight 257 nexthop dev b"
    ));
    assert!(p(
        "ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a weight x nexthop dev b"
    ));
    assert!(p(
        "ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a nexthop via 10.0.0.x dev b"
    ));
    assert!(p(
        "ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a nexthop via fe80::2 dev b"
    ));
    assert!(p(
        "ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a nexthop dev b/c"
    ));
}
