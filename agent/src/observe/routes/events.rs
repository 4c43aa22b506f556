//! Observe stage, kernel side: the pure decoding of rtnetlink notifications
//! (route, rule, link and address changes) into [`Event`]s.

use netlink_packet_core::{Parseable, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_APPEND, NLM_F_REPLACE};
use netlink_packet_route::route::RouteMessage;

use super::convert::{peek_key, route_from_message};
use super::error::RouteError;
use super::frames::{errno, frames, Wanted, RTM_NEWROUTE};
use super::nexthops::{parse_nexthop, NexthopObject, RTM_DELNEXTHOP, RTM_NEWNEXTHOP};
use super::rule_dump::{parse_rule, RTM_DELRULE, RTM_NEWRULE};
use crate::model::{ObservedRoute, ObservedRule};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_DELROUTE: u16 = 25;
/// `struct ifaddrmsg`'s first byte, `ifa_family`, for IPv4.
const AF_INET: u8 = 2;

/// A change the kernel announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A route of any type was added (`RTM_NEWROUTE`); `replace` when it
    /// replaced the first route with the same key, TOS (IPv6: source) and metric
    /// (`NLM_F_REPLACE`), `append` when it went after those (`NLM_F_APPEND`);
    /// neither: before them (`ip route add`, `prepend`).
    RouteAdded {
        /// The route as the kernel announced it.
        route: ObservedRoute,
        /// Set when the kernel flagged the change `NLM_F_REPLACE`.
        replace: bool,
        /// Set when the kernel flagged the change `NLM_F_APPEND`.
        append: bool,
    },
    /// A route was deleted (`RTM_DELROUTE`). Not sent for the IPv4 routes of a
    /// link set down, nor for the IPv4 routes of a next-hop object deleted:
    /// watch [`Event::Link`] and [`Event::Nexthop`] for those.
    RouteRemoved(ObservedRoute),
    /// A next-hop object was added, changed (a group losing a member) or
    /// (`removed`) deleted (`RTM_NEWNEXTHOP`, `RTM_DELNEXTHOP`). The kernel
    /// changes or deletes the IPv4 routes using it silently.
    Nexthop {
        /// The object as announced.
        object: NexthopObject,
        /// `RTM_DELNEXTHOP`.
        removed: bool,
    },
    /// A link was added or changed (`RTM_NEWLINK`): up/down, carrier, name.
    /// Setting a link down removes its IPv4 routes without any `RTM_DELROUTE`.
    Link {
        /// Interface index.
        index: u32,
    },
    /// A link was deleted (`RTM_DELLINK`).
    LinkRemoved {
        /// Interface index.
        index: u32,
    },
    /// An address was added to or removed from a link (`RTM_NEWADDR`,
    /// `RTM_DELADDR`). Removing an IPv4 address flushes the routes whose gateway
    /// it made reachable, without any `RTM_DELROUTE`: re-read routes then. IPv6
    /// announces the routes it removes.
    Address {
        /// Interface index of the link holding the address.
        index: u32,
        /// `RTM_DELADDR`.
        removed: bool,
        /// An IPv4 address (`AF_INET`).
        ipv4: bool,
    },
    /// Notifications were lost (`ENOBUFS`): dump again to know the current
    /// state. The watcher has already emptied its queue (stale events), so a
    /// dump made after receiving this sees every later change or its event.
    Overrun,
    /// An IPv4 or IPv6 policy-routing rule was added (`RTM_NEWRULE`) or
    /// (`removed`) deleted (`RTM_DELRULE`). Rules of other families (multicast
    /// routing) are not reported.
    Rule {
        /// The rule as announced.
        rule: ObservedRule,
        /// `RTM_DELRULE`.
        removed: bool,
    },
}

/// Append the events of one notification datagram to `out`. Cached routes and
/// other families are ignored; with a filter, so are the routes whose key it
/// does not hold, read no further than their key (counted in the returned
/// number). On a message that does not decode, the events before it are kept
/// and the error is returned.
pub(crate) fn decode_datagram(
    datagram: &[u8],
    filter: Option<&Wanted>,
    out: &mut impl Extend<Event>,
) -> Result<u64, RouteError> {
    let mut skipped = 0;
    for frame in frames(datagram) {
        let frame = frame?;
        if let (Some(wanted), RTM_NEWROUTE | RTM_DELROUTE) = (filter, frame.kind) {
            let peeked = peek_key(frame.payload).map_err(|e| RouteError::parse("route notification", e))?;
            if !peeked.is_some_and(|p| wanted.contains(&p.key)) {
                skipped += 1;
                continue;
            }
        }
        if let Some(event) = decode(frame.kind, frame.flags, frame.payload)? {
            out.extend(Some(event));
        }
    }
    Ok(skipped)
}

fn decode(kind: u16, flags: u16, payload: &[u8]) -> Result<Option<Event>, RouteError> {
    Ok(match kind {
        RTM_NEWROUTE => route(payload)?.map(|route| Event::RouteAdded {
            route,
            replace: flags & NLM_F_REPLACE != 0,
            append: flags & NLM_F_APPEND != 0,
        }),
        RTM_DELROUTE => route(payload)?.map(Event::RouteRemoved),
        RTM_NEWNEXTHOP | RTM_DELNEXTHOP => Some(Event::Nexthop {
            object: parse_nexthop(payload).map_err(|e| RouteError::parse("next-hop notification", e))?,
            removed: kind == RTM_DELNEXTHOP,
        }),
        RTM_NEWLINK => Some(Event::Link {
            index: index(payload, "RTM_NEWLINK message")?,
        }),
        RTM_DELLINK => Some(Event::LinkRemoved {
            index: index(payload, "RTM_DELLINK message")?,
        }),
        RTM_NEWADDR | RTM_DELADDR => Some(Event::Address {
            index: index(payload, "address message")?,
            removed: kind == RTM_DELADDR,
            ipv4: payload.first() == Some(&AF_INET),
        }),
        RTM_NEWRULE | RTM_DELRULE => parse_rule(payload, "rule notification")?.map(|rule| Event::Rule {
            rule,
            removed: kind == RTM_DELRULE,
        }),
        NLMSG_OVERRUN => Some(Event::Overrun),
        NLMSG_ERROR if errno(payload) == nix::libc::ENOBUFS => Some(Event::Overrun),
        _ => None,
    })
}

fn route(payload: &[u8]) -> Result<Option<ObservedRoute>, RouteError> {
    let msg = RouteMessage::parse(payload).map_err(|e| RouteError::parse("route notification", e))?;
    Ok(route_from_message(&msg))
}

/// The interface index of a link (`struct ifinfomsg`) or address
/// (`struct ifaddrmsg`) message: both hold it at offset 4.
fn index(payload: &[u8], what: &'static str) -> Result<u32, RouteError> {
    payload
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(|| {
            RouteError::parse(
                what,
                format!("{} bytes, too short for an interface index", payload.len()),
            )
        })
}
