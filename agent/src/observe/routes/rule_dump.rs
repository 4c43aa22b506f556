//! Observe stage, kernel side: the dump of every policy-routing rule, IPv4 and
//! IPv6 (`ip rule`, `ip -6 rule`), in the kernel's order.
//!
//! One `RTM_GETRULE` request with `NLM_F_DUMP` for `AF_UNSPEC` makes the kernel
//! send the rules of every family (the multicast routing rules too, which the
//! conversion leaves out). The rule table is small (tens of rules): the dump
//! reads it like the route dump, one datagram at a time into one reusable
//! buffer, and keeps every rule. It is a request of its own, separate from the
//! route dump, so nothing is added to the route dump's path.

use netlink_packet_core::{Parseable, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR};
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_route::RouteNetlinkMessage;

use super::dump::{read_dump, request, DUMP_ATTEMPTS};
use super::error::RouteError;
use super::frames::{dump_control, errno, feed_frames, Frame, Progress};
use super::rule_convert::rule_from_message;
use super::socket::{self, READ_BUFFER};
use crate::model::ObservedRule;

/// `RTM_NEWRULE`.
pub(crate) const RTM_NEWRULE: u16 = 32;
/// `RTM_DELRULE`.
pub(crate) const RTM_DELRULE: u16 = 33;
const REQUEST: &str = "RTM_GETRULE dump";

/// Every IPv4 and IPv6 routing rule of the calling thread's network namespace,
/// in the kernel's order (by priority, then in the order they were added).
///
/// Blocking: call it from `tokio::task::spawn_blocking` in async code. A dump the
/// kernel marks interrupted is started over, up to [`DUMP_ATTEMPTS`] times.
pub fn dump_rules() -> Result<Vec<ObservedRule>, RouteError> {
    let socket = socket::open("rule dump")?;
    let mut buf = Vec::with_capacity(READ_BUFFER);
    for seq in 1..=DUMP_ATTEMPTS {
        let mut state = RuleDumpState::new(seq);
        socket::send(&socket, &dump_request(seq), REQUEST)?;
        if read_dump(&socket, &mut buf, REQUEST, |d| state.feed(d))? == Progress::Done {
            return Ok(state.rules);
        }
        tracing::debug!(
            attempt = seq,
            "rule dump interrupted by concurrent changes, starting over"
        );
    }
    Err(RouteError::DumpInterrupted {
        request: REQUEST,
        attempts: DUMP_ATTEMPTS,
    })
}

/// `RTM_GETRULE` with `NLM_F_DUMP`, every family.
pub(crate) fn dump_request(seq: u32) -> Vec<u8> {
    request(RouteNetlinkMessage::GetRule(RuleMessage::default()), seq)
}

/// One attempt at a rule dump, fed one datagram at a time (pure).
pub(crate) struct RuleDumpState {
    seq: u32,
    interrupted: bool,
    /// The rules so far, in kernel order.
    pub(crate) rules: Vec<ObservedRule>,
}

impl RuleDumpState {
    pub(crate) fn new(seq: u32) -> RuleDumpState {
        RuleDumpState {
            seq,
            interrupted: false,
            rules: Vec::new(),
        }
    }

    /// Account for every message of one datagram.
    pub(crate) fn feed(&mut self, datagram: &[u8]) -> Result<Progress, RouteError> {
        feed_frames(datagram, |frame| self.message(frame))
    }

    fn message(&mut self, frame: &Frame<'_>) -> Result<Progress, RouteError> {
        if frame.seq != self.seq {
            return Ok(Progress::More);
        }
        self.interrupted |= frame.flags & NLM_F_DUMP_INTR != 0;
        match frame.kind {
            RTM_NEWRULE => {
                let rule = parse_rule(frame.payload, "RTM_NEWRULE message")?;
                self.rules.extend(rule);
                Ok(Progress::More)
            }
            NLMSG_DONE | NLMSG_ERROR => {
                dump_control(frame.kind, errno(frame.payload), self.interrupted, REQUEST)
            }
            _ => Ok(Progress::More),
        }
    }
}

/// Decode one rule message (payload without the netlink header); `None` for
/// the rules [`rule_from_message`] leaves out.
pub(crate) fn parse_rule(payload: &[u8], what: &'static str) -> Result<Option<ObservedRule>, RouteError> {
    let msg = RuleMessage::parse(payload).map_err(|e| RouteError::parse(what, e))?;
    Ok(rule_from_message(&msg))
}
