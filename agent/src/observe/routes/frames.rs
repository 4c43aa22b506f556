//! Observe stage, kernel side: walking the netlink messages packed in one
//! datagram, and the pure state machine of a route dump (done, interrupted,
//! failed), fed one datagram at a time so memory never grows with the table.

use std::collections::HashSet;
use std::io;

use netlink_packet_core::{NetlinkBuffer, Parseable, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR};
use netlink_packet_route::route::RouteMessage;

use super::convert::{peek_key, route_from_message};
use super::error::RouteError;
use super::nexthops::NexthopTable;
use crate::model::{Family, ObservedRoute, RouteKey};

/// `RTM_NEWROUTE`.
pub(crate) const RTM_NEWROUTE: u16 = 24;
const EINTR: i32 = 4;
const EBUSY: i32 = 16;
const REQUEST: &str = "RTM_GETROUTE dump";

/// The header fields of one netlink message and its payload.
pub(crate) struct Frame<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// What follows the 16-byte header.
    pub payload: &'a [u8],
}

/// The messages of one datagram, in order; an error ends the walk.
pub(crate) fn frames(datagram: &[u8]) -> impl Iterator<Item = Result<Frame<'_>, RouteError>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let frame = next_frame(rest);
        rest = match &frame {
            Ok((_, len)) => rest.get(align(*len)..).unwrap_or_default(),
            Err(_) => &[],
        };
        Some(frame.map(|(frame, _)| frame))
    })
}

fn next_frame(rest: &[u8]) -> Result<(Frame<'_>, usize), RouteError> {
    let buf = NetlinkBuffer::new_checked(rest).map_err(|e| RouteError::parse("netlink message header", e))?;
    let len = buf.length() as usize;
    let frame = Frame {
        kind: buf.message_type(),
        flags: buf.flags(),
        seq: buf.sequence_number(),
        payload: &rest[16..len],
    };
    Ok((frame, len))
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Hand every message of one datagram to `message`, until one ends the dump.
pub(crate) fn feed_frames(
    datagram: &[u8],
    mut message: impl FnMut(&Frame<'_>) -> Result<Progress, RouteError>,
) -> Result<Progress, RouteError> {
    for frame in frames(datagram) {
        let progress = message(&frame?)?;
        if progress != Progress::More {
            return Ok(progress);
        }
    }
    Ok(Progress::More)
}

/// Where an `NLMSG_DONE` or `NLMSG_ERROR` (of `kind`, with `errno`) leaves the
/// dump of `request`: an error with errno 0 is an acknowledgement (read on),
/// `EINTR`/`EBUSY` interrupt it, any other errno is the kernel's refusal.
pub(crate) fn dump_control(
    kind: u16,
    errno: i32,
    interrupted: bool,
    request: &'static str,
) -> Result<Progress, RouteError> {
    match (kind, errno) {
        (NLMSG_DONE, 0) if interrupted => Ok(Progress::Interrupted),
        (NLMSG_DONE, 0) => Ok(Progress::Done),
        (_, 0) => Ok(Progress::More),
        (_, EINTR | EBUSY) => Ok(Progress::Interrupted),
        (_, errno) => Err(RouteError::Kernel {
            request,
            source: io::Error::from_raw_os_error(errno),
        }),
    }
}

/// The errno of an `NLMSG_ERROR` or `NLMSG_DONE` payload (0: none).
pub(crate) fn errno(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| -i32::from_ne_bytes(b))
}

/// What a whole route dump found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDump {
    /// The routes whose key was wanted, of every type, in kernel order (a key
    /// can appear several times, e.g. with different metrics or types).
    pub routes: Vec<ObservedRoute>,
    /// Unicast IPv4 and IPv6 routes seen in every table (`ipv4 + ipv6`).
    pub total: u64,
    /// Unicast IPv4 routes seen.
    pub ipv4: u64,
    /// Unicast IPv6 routes seen.
    pub ipv6: u64,
    /// Route messages skipped because they are not unicast IPv4/IPv6 routes
    /// (local, broadcast, multicast, blackhole..., other families).
    pub skipped: u64,
    /// How many dumps it took: 1, more when the kernel flagged one as
    /// interrupted by concurrent changes (`NLM_F_DUMP_INTR`).
    pub attempts: u32,
    /// The next-hop objects, read just before the routes; `routes` already
    /// forward through their objects' hops.
    pub nexthops: NexthopTable,
}

/// Where a dump stands after a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Read on.
    More,
    /// `NLMSG_DONE` arrived and nothing interrupted the dump.
    Done,
    /// The dump ended but the table changed meanwhile: start over.
    Interrupted,
}

/// The keys routes are kept for, sorted: a binary search costs a few
/// comparisons where hashing each of a million keys with SipHash took a third of
/// the dump's user time. The dump and the watcher's filter both use it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted(Vec<RouteKey>);

impl Wanted {
    /// The set of keys.
    pub fn new(keys: &HashSet<RouteKey>) -> Wanted {
        let mut keys: Vec<RouteKey> = keys.iter().copied().collect();
        keys.sort_unstable();
        Wanted(keys)
    }

    /// Is `key` one of them?
    pub fn contains(&self, key: &RouteKey) -> bool {
        self.0.binary_search(key).is_ok()
    }
}

/// One attempt at a route dump.
pub(crate) struct DumpState {
    wanted: Wanted,
    seq: u32,
    interrupted: bool,
    dump: RouteDump,
}

impl DumpState {
    pub(crate) fn new(wanted: &HashSet<RouteKey>, seq: u32) -> DumpState {
        DumpState {
            wanted: Wanted::new(wanted),
            seq,
            interrupted: false,
            dump: RouteDump::default(),
        }
    }

    pub(crate) fn finish(self) -> RouteDump {
        RouteDump {
            attempts: self.seq,
            ..self.dump
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
            RTM_NEWROUTE => self.route(frame.payload).map(|()| Progress::More),
            NLMSG_DONE | NLMSG_ERROR => {
                dump_control(frame.kind, errno(frame.payload), self.interrupted, REQUEST)
            }
            _ => Ok(Progress::More),
        }
    }

    fn route(&mut self, payload: &[u8]) -> Result<(), RouteError> {
        let peeked = peek_key(payload).map_err(|e| RouteError::parse("RTM_NEWROUTE message", e))?;
        let Some(peeked) = peeked else {
            self.dump.skipped += 1;
            return Ok(());
        };
        if peeked.unicast {
            self.count(peeked.key.family);
        } else {
            self.dump.skipped += 1;
        }
        if self.wanted.contains(&peeked.key) {
            self.dump.routes.push(decode(payload, &peeked.key)?);
        }
        Ok(())
    }

    fn count(&mut self, family: Family) {
        self.dump.total += 1;
        match family {
            Family::Ipv4 => self.dump.ipv4 += 1,
            Family::Ipv6 => self.dump.ipv6 += 1,
        }
    }
}

/// Fully decode a wanted route.
fn decode(payload: &[u8], key: &RouteKey) -> Result<ObservedRoute, RouteError> {
    let what = "RTM_NEWROUTE message of a wanted route";
    let msg = RouteMessage::parse(payload)
        .map_err(|e| RouteError::parse(what, format!("{}: {e}", key.destination)))?;
    route_from_message(&msg)
        .ok_or_else(|| RouteError::parse(what, format!("{}: not an IPv4 or IPv6 route", key.destination)))
}
