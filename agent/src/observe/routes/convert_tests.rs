//! Tests of the pure route conversion, from messages captured from the kernel
//! (see `tests/fixtures/routes/dump-ip-route.txt` for what `ip` shows of them;
//! ens5 is ifindex 3, ens6 ifindex 5) and from constructed ones.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{Emitable, Parseable};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol, RouteType, RouteVia,
};
use netlink_packet_route::AddressFamily;

use super::convert::{peek_key, route_from_message};
use super::fixtures::{payload, MESSAGES};
use crate::model::{Family, NextHop, ObservedRoute, Protocol, RouteKey, RouteType as Kind};

fn parse(name: &str) -> RouteMessage {
    RouteMessage::parse(&payload(name)).expect("fixture parses")
}

fn convert(name: &str) -> Option<ObservedRoute> {
    route_from_message(&parse(name))
}

fn key(table: u32, net: &str) -> RouteKey {
    RouteKey::new(table, net.parse().expect("network"))
}

fn hop(gateway: &str, ifindex: u32) -> NextHop {
    NextHop {
        gateway: Some(gateway.parse().expect("address")),
        ifindex: Some(ifindex),
    }
}

#[test]
fn ipv4_via_gateway_with_metric_and_protocol() {
    let route = convert("ipv4-gateway").expect("unicast route");
    assert_eq!(route.key, key(254, "192.168.1.0/24"));
    assert_eq!(route.next_hops, vec![hop("172.18.0.1", 3)]);
    assert_eq!(route.metric, Some(100));
    assert_eq!(route.protocol, Protocol(4), "proto static");
}

#[test]
fn ipv4_default_route_has_no_destination_attribute() {
    let msg = parse("ipv4-default");
    assert!(!msg
        .attributes
        .iter()
        .any(|a| matches!(a, RouteAttribute::Destination(_))));
    let route = route_from_message(&msg).expect("unicast route");
    assert_eq!(route.key, key(254, "0.0.0.0/0"));
    assert_eq!(route.next_hops, vec![hop("172.18.0.1", 3)]);
    assert_eq!(route.metric, None, "IPv4 sends no RTA_PRIORITY for metric 0");
    assert_eq!(route.protocol, Protocol(3), "proto boot");
}

#[test]
fn table_above_255_comes_from_rta_table() {
    let msg = parse("ipv4-table-1000");
    assert_eq!(msg.header.table, 252, "the header only holds RT_TABLE_COMPAT");
    let route = route_from_message(&msg).expect("unicast route");
    assert_eq!(route.key, key(1000, "10.20.0.0/16"));
    assert_eq!(
        convert("ipv4-table-200").map(|r| r.key),
        Some(key(200, "10.30.0.0/24"))
    );
}

#[test]
fn ipv4_multipath_lists_every_next_hop() {
    let route = convert("ipv4-multipath").expect("unicast route");
    assert_eq!(route.key, key(254, "10.40.0.0/24"));
    assert_eq!(route.next_hops, vec![hop("172.18.0.1", 3), hop("172.19.0.1", 5)]);
}

#[test]
fn rta_via_gives_an_ipv6_gateway_to_an_ipv4_route() {
    let route = convert("ipv4-via-inet6").expect("unicast route");
    assert_eq!(route.key, key(254, "10.50.0.0/24"));
    assert_eq!(route.next_hops, vec![hop("fe80::1", 3)]);
}

#[test]
fn ipv6_routes_single_and_multipath() {
    let route = convert("ipv6-gateway").expect("unicast route");
    assert_eq!(route.key, key(254, "2001:db8:1::/48"));
    assert_eq!(route.key.family, Family::Ipv6);
    assert_eq!(route.next_hops, vec![hop("2001:db8::1", 3)]);
    assert_eq!(route.metric, Some(50));
    let route = convert("ipv6-multipath").expect("unicast route");
    assert_eq!(
        route.next_hops,
        vec![hop("2001:db8::1", 3), hop("2001:db8::3", 3)]
    );
    assert_eq!(route.metric, Some(1024));
}

#[test]
fn every_type_converts_with_its_type() {
    for (name, kind, hops) in [
        ("ipv4-blackhole", Kind::Blackhole, 0),
        ("ipv4-local", Kind::Local, 1),
        ("ipv4-broadcast", Kind::Broadcast, 1),
        ("ipv6-local", Kind::Local, 1),
        ("ipv6-multicast", Kind::Multicast, 1),
        ("ipv4-gateway", Kind::Unicast, 1),
    ] {
        let route = convert(name).expect(name);
        assert_eq!((route.kind, route.next_hops.len()), (kind, hops), "{name}");
    }
}

#[test]
fn a_unicast_route_in_the_local_table_is_kept() {
    let route = convert("ipv4-unicast-in-local-table").expect("unicast route");
    assert_eq!(route.key, key(255, "10.70.0.0/24"));
}

#[test]
fn peek_agrees_with_the_full_conversion_on_every_capture() {
    for name in MESSAGES {
        let peeked = peek_key(&payload(name)).expect("peek");
        let converted = convert(name);
        assert_eq!(peeked.map(|p| p.key), converted.as_ref().map(|r| r.key), "{name}");
        assert_eq!(
            peeked.map(|p| p.unicast),
            converted.map(|r| r.kind == Kind::Unicast),
            "{name}"
        );
    }
}

fn constructed(family: AddressFamily, len: u8, attributes: Vec<RouteAttribute>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header = RouteHeader {
        address_family: family,
        destination_prefix_length: len,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Static,
        kind: RouteType::Unicast,
        ..RouteHeader::default()
    };
    msg.attributes = attributes;
    msg
}

fn emitted(msg: &RouteMessage) -> Vec<u8> {
    let mut bytes = vec![0; msg.buffer_len()];
    msg.emit(&mut bytes);
    bytes
}

#[test]
fn constructed_route_without_rta_table_uses_the_header_and_clears_host_bits() {
    let dst = RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(10, 1, 2, 3)));
    let msg = constructed(AddressFamily::Inet, 24, vec![dst, RouteAttribute::Oif(7)]);
    let route = route_from_message(&msg).expect("unicast route");
    assert_eq!(route.key, key(254, "10.1.2.0/24"));
    assert_eq!(
        route.next_hops,
        vec![NextHop {
            gateway: None,
            ifindex: Some(7)
        }]
    );
    assert_eq!(
        peek_key(&emitted(&msg)).expect("peek").map(|p| p.key),
        Some(route.key)
    );
}

#[test]
fn constructed_multipath_with_via_and_rta_table() {
    let mut via = RouteNextHop::default();
    via.interface_index = 4;
    via.attributes = vec![RouteAttribute::Via(RouteVia::Inet6(
        "fe80::9".parse().expect("v6"),
    ))];
    let mut plain = RouteNextHop::default();
    plain.interface_index = 5;
    let attrs = vec![
        RouteAttribute::Table(4242),
        RouteAttribute::MultiPath(vec![via, plain]),
    ];
    let msg = constructed(AddressFamily::Inet6, 0, attrs);
    let route = route_from_message(&msg).expect("unicast route");
    assert_eq!(route.key, key(4242, "::/0"));
    let gateway = Some(IpAddr::V6("fe80::9".parse().expect("v6")));
    assert_eq!(
        route.next_hops,
        vec![
            NextHop {
                gateway,
                ifindex: Some(4)
            },
            NextHop {
                gateway: None,
                ifindex: Some(5)
            }
        ]
    );
    assert_eq!(
        peek_key(&emitted(&msg)).expect("peek").map(|p| p.key),
        Some(route.key)
    );
}

#[test]
fn other_families_and_bad_prefixes_are_refused() {
    assert_eq!(
        route_from_message(&constructed(AddressFamily::Mpls, 0, vec![])),
        None
    );
    let too_long = constructed(AddressFamily::Inet, 33, vec![]);
    assert_eq!(route_from_message(&too_long), None);
    assert!(peek_key(&emitted(&too_long)).is_err());
    let v6_dst_in_v4 = RouteAttribute::Destination(RouteAddress::Inet6("2001:db8::".parse().expect("v6")));
    assert_eq!(
        route_from_message(&constructed(AddressFamily::Inet, 32, vec![v6_dst_in_v4])),
        None
    );
    assert!(peek_key(&[2, 0, 0]).is_err(), "shorter than struct rtmsg");
}
