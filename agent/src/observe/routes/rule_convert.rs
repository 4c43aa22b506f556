//! Observe stage, kernel side: the pure conversion of a rule message (`struct
//! fib_rule_hdr` and its `FRA_*` attributes, as `RTM_NEWRULE`/`RTM_DELRULE`
//! carry them) into an [`ObservedRule`], in the intent's words.
//!
//! What the kernel reports and how it reads:
//! - `FRA_PRIORITY` is absent for priority 0 (the `local` rule).
//! - `fwmark M` without a mask is stored with mask `0xffffffff`; a mark of 0 is
//!   not sent, its mask is (`fwmark 0/0x10`).
//! - `FRA_SUPPRESS_PREFIXLEN` and `FRA_SUPPRESS_IFGROUP` are always sent, `-1`
//!   when unset.
//! - `l3mdev` rules carry table 0: they look up the table of the packet's VRF.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::rule::{RuleAction as KernelAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::AddressFamily;

use crate::model::{Family, IfName, ObservedRule, Protocol, RuleAction, RuleSelector, FWMASK_ALL};

/// The value the kernel sends for an unset `suppress_prefixlength` or
/// `suppress_ifgroup`.
const UNSET: u32 = u32::MAX;

/// Convert a kernel rule message into an [`ObservedRule`].
///
/// `None` for other families (the multicast routing rules of `ipmr`/`ip6mr`
/// come in the same dump), for actions the kernel reserves (`unspec`), and for
/// interface names no kernel accepts.
pub fn rule_from_message(msg: &RuleMessage) -> Option<ObservedRule> {
    let header = &msg.header;
    let family = match header.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    let attrs = Attrs::collect(&msg.attributes);
    if attrs.bad_name {
        return None;
    }
    let mut selector = attrs.selector.clone();
    selector.from = prefix(attrs.source, header.src_len)?;
    selector.to = prefix(attrs.destination, header.dst_len)?;
    selector.tos = Some(header.tos).filter(|t| *t != 0);
    selector.invert = header.flags.contains(RuleFlags::Invert);
    let action = match header.action {
        KernelAction::ToTable => RuleAction::Table(attrs.table.unwrap_or(u32::from(header.table))),
        KernelAction::Goto => RuleAction::Goto(attrs.goto?),
        KernelAction::Nop => RuleAction::Nop,
        KernelAction::Blackhole => RuleAction::Blackhole,
        KernelAction::Unreachable => RuleAction::Unreachable,
        KernelAction::Prohibit => RuleAction::Prohibit,
        _ => return None,
    };
    Some(ObservedRule {
        family,
        priority: attrs.priority,
        selector,
        action,
        l3mdev: attrs.l3mdev,
        unchecked: attrs.unchecked,
        protocol: Protocol(attrs.protocol),
    })
}

/// The attributes the conversion reads.
struct Attrs {
    priority: u32,
    table: Option<u32>,
    goto: Option<u32>,
    source: Option<IpAddr>,
    destination: Option<IpAddr>,
    selector: RuleSelector,
    /// An interface name that does not validate.
    bad_name: bool,
    l3mdev: bool,
    unchecked: Vec<String>,
    protocol: u8,
}

impl Attrs {
    fn collect(attributes: &[RuleAttribute]) -> Attrs {
        let mut a = Attrs {
            priority: 0,
            table: None,
            goto: None,
            source: None,
            destination: None,
            selector: RuleSelector::default(),
            bad_name: false,
            l3mdev: false,
            unchecked: Vec::new(),
            protocol: 0,
        };
        let (mut mark, mut mask) = (None, None);
        for attr in attributes {
            match attr {
                RuleAttribute::Priority(p) => a.priority = *p,
                RuleAttribute::Table(t) => a.table = Some(*t),
                RuleAttribute::Goto(p) => a.goto = Some(*p),
                RuleAttribute::Source(ip) => a.source = Some(*ip),
                RuleAttribute::Destination(ip) => a.destination = Some(*ip),
                RuleAttribute::FwMark(m) => mark = Some(*m),
                RuleAttribute::FwMask(m) => mask = Some(*m),
                RuleAttribute::L3MDev(on) => a.l3mdev = *on,
                RuleAttribute::Protocol(p) => a.protocol = u8::from(*p),
                other => a.other(other),
            }
        }
        a.selector.fwmark = fwmark(mark, mask);
        a
    }

    /// A selector attribute: compared ones go into the selector, the rest into
    /// `unchecked`.
    fn other(&mut self, attr: &RuleAttribute) {
        let s = &mut self.selector;
        let mut name = |n: &str| {
            let valid = IfName::new(n).ok();
            self.bad_name |= valid.is_none();
            valid
        };
        match attr {
            RuleAttribute::Iifname(n) => s.iif = name(n),
            RuleAttribute::Oifname(n) => s.oif = name(n),
            RuleAttribute::IpProtocol(p) => s.ipproto = Some(u8::from(*p)).filter(|p| *p != 0),
            RuleAttribute::SourcePortRange(r) => s.sport = Some((r.start, r.end)),
            RuleAttribute::DestinationPortRange(r) => s.dport = Some((r.start, r.end)),
            RuleAttribute::SuppressPrefixLen(n) => s.suppress_prefixlength = Some(*n).filter(|n| *n != UNSET),
            RuleAttribute::UidRange(r) => self.unchecked.push(format!("uidrange {}-{}", r.start, r.end)),
            RuleAttribute::Realm(r) => self
                .unchecked
                .push(format!("realms {}/{}", r.source, r.destination)),
            RuleAttribute::TunId(id) => self.unchecked.push(format!("tun_id {id}")),
            RuleAttribute::SuppressIfGroup(g) if *g != UNSET => {
                self.unchecked.push(format!("suppress_ifgroup {g}"))
            }
            _ => {}
        }
    }
}

/// `fwmark`: set when either attribute is there; the kernel's mask for a mark
/// given without one is all ones.
fn fwmark(mark: Option<u32>, mask: Option<u32>) -> Option<(u32, u32)> {
    match (mark, mask) {
        (None, None) => None,
        (mark, mask) => Some((mark.unwrap_or(0), mask.unwrap_or(FWMASK_ALL))),
    }
}

/// `from`/`to`: `Some(None)` for no prefix (length 0), `None` when the address
/// is missing or does not fit the length.
fn prefix(addr: Option<IpAddr>, len: u8) -> Option<Option<IpNet>> {
    if len == 0 {
        return Some(None);
    }
    IpNet::new(addr?, len).ok().map(|n| Some(n.trunc()))
}
