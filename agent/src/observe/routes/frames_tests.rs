//! Tests of the dump state machine and of notification decoding, on datagrams
//! captured from the kernel and on edited copies of them.

use std::collections::{HashSet, VecDeque};

use super::dump::dump_request;
use super::events::{decode_datagram, Event};
use super::fixtures::{lines, message};
use super::frames::{frames, DumpState, Progress};
use crate::model::RouteKey;

fn key(table: u32, net: &str) -> RouteKey {
    RouteKey::new(table, net.parse().expect("network"))
}

fn wanted() -> HashSet<RouteKey> {
    [
        key(254, "192.168.1.0/24"),
        key(1000, "10.20.0.0/16"),
        key(255, "10.70.0.0/24"),
        key(254, "2001:db8:2::/48"),
        key(254, "10.99.0.0/24"), // absent
        key(254, "10.60.0.0/24"), // a blackhole
    ]
    .into_iter()
    .collect()
}

/// Feed every datagram, returning the progress after each.
fn feed_all(state: &mut DumpState, datagrams: &[Vec<u8>]) -> Vec<Progress> {
    datagrams
        .iter()
        .map(|d| state.feed(d).expect("datagram decodes"))
        .collect()
}

#[test]
fn captured_dump_keeps_wanted_routes_and_counts_the_rest() {
    let wanted = wanted();
    let mut state = DumpState::new(&wanted, 1);
    let progress = feed_all(&mut state, &lines("dump-datagrams"));
    assert_eq!(progress.last(), Some(&Progress::Done));
    let dump = state.finish();
    let mut found: Vec<_> = dump.routes.iter().map(|r| r.key).collect();
    found.sort();
    let mut expected = vec![
        key(254, "10.60.0.0/24"), // the blackhole: wanted keys are kept whatever their type
        key(254, "192.168.1.0/24"),
        key(1000, "10.20.0.0/16"),
        key(255, "10.70.0.0/24"),
        key(254, "2001:db8:2::/48"),
    ];
    expected.sort();
    assert_eq!(found, expected);
    // dump-ip-route.txt: 9 IPv4 and 7 IPv6 unicast routes; 1 blackhole, 4 local,
    // 3 broadcast (IPv4), 2 local and 4 multicast (IPv6) are skipped.
    assert_eq!((dump.ipv4, dump.ipv6, dump.total, dump.skipped), (9, 7, 16, 14));
    assert_eq!(dump.attempts, 1);
}

#[test]
fn messages_of_another_sequence_are_ignored() {
    let wanted = wanted();
    let mut state = DumpState::new(&wanted, 2);
    let progress = feed_all(&mut state, &lines("dump-datagrams"));
    assert!(progress.iter().all(|p| *p == Progress::More));
    assert_eq!(state.finish().total, 0);
}

/// The datagrams with `edit` applied to the netlink header of message `n` of
/// the first datagram.
fn edited(n: usize, edit: impl Fn(&mut [u8])) -> Vec<Vec<u8>> {
    let mut datagrams = lines("dump-datagrams");
    let first = &mut datagrams[0];
    let mut offset = 0;
    for _ in 0..n {
        let len = u32::from_ne_bytes(first[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        offset += (len + 3) & !3;
    }
    edit(&mut first[offset..]);
    datagrams
}

#[test]
fn dump_intr_on_any_message_makes_the_dump_interrupted() {
    let datagrams = edited(1, |m| m[6] |= 0x10); // NLM_F_DUMP_INTR in nlmsg_flags
    let wanted = wanted();
    let mut state = DumpState::new(&wanted, 1);
    assert_eq!(
        feed_all(&mut state, &datagrams).last(),
        Some(&Progress::Interrupted)
    );
}

/// A datagram holding one NLMSG_ERROR or NLMSG_DONE with this errno, seq 1.
fn control(kind: u16, errno: i32) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&20u32.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&2u16.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&(-errno).to_ne_bytes());
    m
}

#[test]
fn kernel_errors_fail_or_restart_the_dump() {
    let wanted = wanted();
    let mut state = DumpState::new(&wanted, 1);
    assert_eq!(state.feed(&control(2, 4)).expect("EINTR"), Progress::Interrupted);
    let err = DumpState::new(&wanted, 1)
        .feed(&control(2, 1))
        .expect_err("EPERM");
    assert_eq!(err.kind(), "kernel");
    assert!(err.to_string().contains("RTM_GETROUTE dump"), "{err}");
    let err = DumpState::new(&wanted, 1)
        .feed(&control(3, 90))
        .expect_err("DONE with EMSGSIZE");
    assert_eq!(err.kind(), "kernel");
    assert_eq!(
        DumpState::new(&wanted, 1).feed(&control(3, 0)).expect("DONE"),
        Progress::Done
    );
}

#[test]
fn a_truncated_datagram_is_a_parse_error() {
    let datagram = &lines("dump-datagrams")[0];
    let cut = &datagram[..datagram.len() - 10];
    let wanted = wanted();
    let err = DumpState::new(&wanted, 1).feed(cut).expect_err("truncated");
    assert_eq!(err.kind(), "parse");
}

#[test]
fn the_dump_request_is_an_unfiltered_rtm_getroute_dump() {
    let bytes = dump_request(7);
    let frame = frames(&bytes).next().expect("one message").expect("decodes");
    assert_eq!((frame.kind, frame.flags, frame.seq), (26, 0x301, 7));
    assert_eq!(frame.payload, [0u8; 12], "AF_UNSPEC, table 0, no attribute");
}

fn events(datagram: &[u8]) -> Vec<Event> {
    let mut out = VecDeque::new();
    decode_datagram(datagram, None, &mut out).expect("decodes");
    out.into()
}

#[test]
fn a_filter_skips_unwanted_routes_without_decoding_them() {
    let wanted = super::frames::Wanted::new(&[key(254, "192.168.1.0/24")].into_iter().collect());
    let mut out = VecDeque::new();
    let skipped = decode_datagram(&message("ipv4-gateway"), Some(&wanted), &mut out).expect("decodes");
    assert_eq!((skipped, out.len()), (0, 1), "a wanted route is an event");
    let skipped = decode_datagram(&message("ipv4-table-200"), Some(&wanted), &mut out).expect("decodes");
    assert_eq!(
        (skipped, out.len()),
        (1, 1),
        "another key is counted, not decoded"
    );
    let skipped = decode_datagram(&indexed(16, 3), Some(&wanted), &mut out).expect("decodes");
    assert_eq!((skipped, out.len()), (0, 2), "links pass the filter");
}

#[test]
fn route_notifications_become_added_replaced_removed() {
    let mut msg = message("ipv4-gateway");
    let route = match events(&msg).as_slice() {
        [Event::RouteAdded {
            route,
            replace: false,
            append: false,
        }] => route.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(route.key, key(254, "192.168.1.0/24"));
    msg[7] |= 0x01; // NLM_F_REPLACE (0x100): high byte of nlmsg_flags
    assert_eq!(
        events(&msg),
        vec![Event::RouteAdded {
            route: route.clone(),
            replace: true,
            append: false,
        }]
    );
    msg[4] = 25; // RTM_DELROUTE
    assert_eq!(events(&msg), vec![Event::RouteRemoved(route)]);
    match events(&message("ipv4-blackhole")).as_slice() {
        [Event::RouteAdded { route, .. }] => assert_eq!(
            (route.key, route.kind, route.next_hops.len()),
            (key(254, "10.60.0.0/24"), crate::model::RouteType::Blackhole, 0),
            "a blackhole is an event of its own type"
        ),
        other => panic!("{other:?}"),
    }
}

/// A link or address message: 16-byte header, then index at offset 4.
fn indexed(kind: u16, index: u32) -> Vec<u8> {
    let mut m = control(kind, 0);
    m[0] = 32;
    m.extend_from_slice(&[0; 12]);
    m[20..24].copy_from_slice(&index.to_ne_bytes());
    m
}

#[test]
fn link_and_address_notifications_carry_the_index() {
    let mut datagram = indexed(16, 3);
    datagram.extend(indexed(17, 4));
    let mut ipv4 = indexed(20, 5);
    ipv4[16] = 2; // AF_INET
    datagram.extend(ipv4);
    datagram.extend(indexed(21, 6));
    let expected = vec![
        Event::Link { index: 3 },
        Event::LinkRemoved { index: 4 },
        Event::Address {
            index: 5,
            removed: false,
            ipv4: true,
        },
        Event::Address {
            index: 6,
            removed: true,
            ipv4: false,
        },
    ];
    assert_eq!(events(&datagram), expected);
    assert_eq!(events(&control(4, 0)), vec![Event::Overrun], "NLMSG_OVERRUN");
    let mut out = VecDeque::new();
    let err = decode_datagram(&indexed(16, 3)[..20], None, &mut out).expect_err("short");
    assert_eq!(err.kind(), "parse");
}
