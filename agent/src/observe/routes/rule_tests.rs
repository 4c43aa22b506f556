//! Tests of the rule conversion, the rule dump and rule notifications, on
//! messages captured from the kernel by `tests/fixtures/rules/capture.sh` (see
//! `dump-ip-rule.txt` there for what `ip rule` shows of them) and edited copies.

use std::collections::VecDeque;

use netlink_packet_core::Parseable;
use netlink_packet_route::rule::RuleMessage;

use super::events::{decode_datagram, Event};
use super::fixtures::unhex;
use super::frames::{frames, Progress};
use super::rule_convert::rule_from_message;
use super::rule_dump::{dump_request, RuleDumpState};
use crate::model::{Family, ObservedRule, RuleAction, FWMASK_ALL};

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        fn text(name: &str) -> &'static str {
            match name {
                $($name => include_str!(concat!("../../../tests/fixtures/rules/", $name, ".hex")),)*
                other => panic!("no fixture {other}"),
            }
        }
    };
}

fixtures!(
    "dump-datagrams",
    "notifications",
    "ipv4-local",
    "ipv4-from-fwmark-mask",
    "ipv4-fwmark",
    "ipv4-iif-oif",
    "ipv4-not-to-tos",
    "ipv4-ports",
    "ipv4-suppress-prefixlength",
    "ipv4-blackhole",
    "ipv4-goto",
    "ipv4-uidrange",
    "ipv4-l3mdev",
    "ipv4-main",
    "ipv6-from",
    "ipv6-to-oif-prohibit",
    "ipv6-main",
);

fn lines(name: &str) -> Vec<Vec<u8>> {
    text(name).lines().map(unhex).collect()
}

/// The rule message of a fixture, without the netlink header.
fn payload(name: &str) -> Vec<u8> {
    lines(name).remove(0)[16..].to_vec()
}

fn convert(payload: &[u8]) -> Option<ObservedRule> {
    rule_from_message(&RuleMessage::parse(payload).expect("a rule message"))
}

fn rule(name: &str) -> ObservedRule {
    convert(&payload(name)).unwrap_or_else(|| panic!("{name} converts"))
}

/// Each captured rule as the canonical words say it (compare with
/// dump-ip-rule.txt, which iproute2 printed for the same rules).
const DESCRIBED: [(&str, &str); 15] = [
    ("ipv4-local", "0: all table 255"),
    (
        "ipv4-from-fwmark-mask",
        "100: from 10.0.0.0/24 fwmark 0x30/0x10 table 200",
    ),
    ("ipv4-fwmark", "110: fwmark 0x40 table 201"),
    ("ipv4-iif-oif", "120: iif ens5 oif ens6 table 202"),
    ("ipv4-not-to-tos", "130: not to 192.168.0.0/16 tos 0x10 table 203"),
    ("ipv4-ports", "140: ipproto 6 sport 1000-2000 dport 53 table 204"),
    (
        "ipv4-suppress-prefixlength",
        "150: suppress_prefixlength 0 table 254",
    ),
    ("ipv4-blackhole", "160: from 10.9.0.0/16 blackhole"),
    ("ipv4-goto", "170: all goto 32766"),
    ("ipv4-uidrange", "180: all uidrange 1000-2000 table 205"),
    ("ipv4-l3mdev", "190: all l3mdev"),
    ("ipv4-main", "32766: all table 254"),
    ("ipv6-from", "100: from fd00:1::/64 table 200"),
    ("ipv6-to-oif-prohibit", "110: to fd00:2::/64 oif ens5 prohibit"),
    ("ipv6-main", "32766: all table 254"),
];

#[test]
fn every_captured_rule_converts_to_its_words() {
    for (name, words) in DESCRIBED {
        let r = rule(name);
        assert_eq!(r.describe(), words, "{name}");
        let family = if name.starts_with("ipv6") {
            Family::Ipv6
        } else {
            Family::Ipv4
        };
        assert_eq!(r.family, family, "{name}");
    }
}

#[test]
fn selectors_actions_and_what_is_not_compared() {
    let masked = rule("ipv4-from-fwmark-mask");
    assert_eq!(masked.selector.fwmark, Some((0x30, 0x10)));
    assert_eq!((masked.table(), masked.protocol.0), (Some(200), 0));
    assert_eq!(
        rule("ipv4-fwmark").selector.fwmark,
        Some((0x40, FWMASK_ALL)),
        "a mark without a mask is stored with all ones"
    );
    let not = rule("ipv4-not-to-tos");
    assert!(not.selector.invert && not.selector.from.is_none());
    assert_eq!(not.selector.tos, Some(0x10));
    let ports = rule("ipv4-ports");
    assert_eq!(
        (ports.selector.ipproto, ports.selector.sport, ports.selector.dport),
        (Some(6), Some((1000, 2000)), Some((53, 53)))
    );
    assert_eq!(
        rule("ipv4-suppress-prefixlength").selector.suppress_prefixlength,
        Some(0)
    );
    assert_eq!(
        rule("ipv4-main").selector.suppress_prefixlength,
        None,
        "-1 is unset"
    );
    assert_eq!(rule("ipv4-goto").action, RuleAction::Goto(32766));
    assert_eq!(rule("ipv4-blackhole").table(), None);
    let vrf = rule("ipv4-l3mdev");
    assert!(vrf.l3mdev && vrf.table().is_none());
    assert_eq!(rule("ipv4-uidrange").unchecked, ["uidrange 1000-2000"]);
    assert_eq!(rule("ipv4-local").protocol.to_string(), "kernel");
    assert_eq!(rule("ipv6-to-oif-prohibit").action, RuleAction::Prohibit);
}

#[test]
fn other_families_reserved_actions_and_bad_names_are_left_out() {
    let mut mroute = payload("ipv4-main");
    mroute[0] = 128; // RTNL_FAMILY_IPMR
    assert_eq!(convert(&mroute), None);
    let mut unspec = payload("ipv4-main");
    unspec[7] = 0; // FR_ACT_UNSPEC
    assert_eq!(convert(&unspec), None);
    let mut bad = payload("ipv4-iif-oif");
    let at = bad.windows(4).position(|w| w == b"ens5").expect("the iif name");
    bad[at] = b'/';
    assert_eq!(convert(&bad), None, "an interface name with a slash");
    assert!(
        RuleMessage::parse(&payload("ipv4-main")[..8]).is_err(),
        "shorter than fib_rule_hdr"
    );
}

#[test]
fn the_captured_dump_keeps_both_families_in_kernel_order() {
    let mut state = RuleDumpState::new(1);
    let progress: Vec<Progress> = lines("dump-datagrams")
        .iter()
        .map(|d| state.feed(d).expect("decodes"))
        .collect();
    assert_eq!(progress.last(), Some(&Progress::Done));
    let got: Vec<(Family, u32)> = state.rules.iter().map(|r| (r.family, r.priority)).collect();
    let mut want: Vec<(Family, u32)> = [0, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 32766, 32767]
        .map(|p| (Family::Ipv4, p))
        .to_vec();
    want.extend([0, 100, 110, 32766].map(|p| (Family::Ipv6, p)));
    assert_eq!(
        got, want,
        "the multicast routing rules (families 128, 129) left out"
    );
}

#[test]
fn interrupted_failed_and_foreign_dumps() {
    let mut datagrams = lines("dump-datagrams");
    datagrams[0][6] |= 0x10; // NLM_F_DUMP_INTR on the first message
    let mut state = RuleDumpState::new(1);
    let last = datagrams.iter().map(|d| state.feed(d).expect("decodes")).last();
    assert_eq!(last, Some(Progress::Interrupted));
    let mut state = RuleDumpState::new(2);
    assert!(lines("dump-datagrams")
        .iter()
        .all(|d| state.feed(d).expect("decodes") == Progress::More));
    assert!(state.rules.is_empty(), "another sequence is ignored");
    let error = |errno: i32| {
        let mut m = Vec::new();
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&1u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-errno).to_ne_bytes());
        m
    };
    let err = RuleDumpState::new(1).feed(&error(1)).expect_err("EPERM");
    assert_eq!(err.kind(), "kernel");
    assert!(err.to_string().contains("RTM_GETRULE dump"), "{err}");
    assert_eq!(
        RuleDumpState::new(1).feed(&error(16)).expect("EBUSY"),
        Progress::Interrupted
    );
    let first = &lines("dump-datagrams")[0];
    let err = RuleDumpState::new(1)
        .feed(&first[..first.len() - 10])
        .expect_err("truncated");
    assert_eq!(err.kind(), "parse");
}

#[test]
fn the_dump_request_asks_every_family() {
    let bytes = dump_request(3);
    let frame = frames(&bytes).next().expect("one message").expect("decodes");
    assert_eq!((frame.kind, frame.flags, frame.seq), (34, 0x301, 3));
    assert_eq!(frame.payload, [0u8; 12], "AF_UNSPEC, no attribute");
}

#[test]
fn rule_notifications_become_events() {
    let mut events = VecDeque::new();
    // The daemon's route filter (here: no route wanted) never drops a rule.
    let none_wanted = super::frames::Wanted::new(&std::collections::HashSet::new());
    for datagram in lines("notifications") {
        decode_datagram(&datagram, Some(&none_wanted), &mut events).expect("decodes");
    }
    let got: Vec<(String, Family, bool)> = events
        .iter()
        .map(|e| match e {
            Event::Rule { rule, removed } => (rule.describe(), rule.family, *removed),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("500: from 10.5.0.0/16 table 250".to_owned(), Family::Ipv4, false),
            ("500: from 10.5.0.0/16 table 250".to_owned(), Family::Ipv4, true),
            ("500: from fd05::/64 table 250".to_owned(), Family::Ipv6, false),
            ("500: from fd05::/64 table 250".to_owned(), Family::Ipv6, true),
        ]
    );
    let mut truncated = lines("notifications").remove(0);
    truncated.truncate(30);
    truncated[..4].copy_from_slice(&30u32.to_ne_bytes());
    let err = decode_datagram(&truncated, None, &mut events).expect_err("short rule");
    assert_eq!(err.kind(), "parse");
}
