//! Observe stage, kernel side: the streaming dump of every routing table.
//!
//! One `RTM_GETROUTE` request with `NLM_F_DUMP` and no strict checking makes the
//! kernel send every table of both families. Each datagram is read into one
//! reusable buffer, each route is keyed in place and decoded only when its key is
//! wanted, so memory stays flat whatever the size of the table.

use std::collections::HashSet;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::Socket;

use super::error::RouteError;
use super::frames::{DumpState, Progress, RouteDump};
use super::nexthops::dump_nexthops;
use super::socket::{self, READ_BUFFER};
use crate::model::RouteKey;

/// How many times a dump interrupted by concurrent changes is started again.
pub const DUMP_ATTEMPTS: u32 = 5;
const REQUEST: &str = "RTM_GETROUTE dump";

/// Dump all routing tables, IPv4 and IPv6, of the calling thread's network
/// namespace, keeping the routes (of every type) whose key is in `wanted` and
/// counting the unicast ones; the next-hop objects are read first and the kept
/// routes that use one forward through its hops.
///
/// Blocking: call it from `tokio::task::spawn_blocking` in async code. A dump the
/// kernel marks interrupted (`NLM_F_DUMP_INTR`) is started over, up to
/// [`DUMP_ATTEMPTS`] times, then fails with [`RouteError::DumpInterrupted`].
pub fn dump_routes(wanted: &HashSet<RouteKey>) -> Result<RouteDump, RouteError> {
    let nexthops = dump_nexthops()?;
    let mut dump = dump_route_table(wanted)?;
    dump.routes = std::mem::take(&mut dump.routes)
        .into_iter()
        .filter_map(|r| nexthops.resolve(r, true))
        .collect();
    dump.nexthops = nexthops;
    Ok(dump)
}

fn dump_route_table(wanted: &HashSet<RouteKey>) -> Result<RouteDump, RouteError> {
    let socket = socket::open("route dump")?;
    let mut buf = Vec::with_capacity(READ_BUFFER);
    // The sequence number of each request is its attempt number.
    for seq in 1..=DUMP_ATTEMPTS {
        let mut state = DumpState::new(wanted, seq);
        socket::send(&socket, &dump_request(seq), REQUEST)?;
        if read_dump(&socket, &mut buf, REQUEST, |d| state.feed(d))? == Progress::Done {
            return Ok(state.finish());
        }
        tracing::debug!(
            attempt = seq,
            "route dump interrupted by concurrent changes, starting over"
        );
    }
    Err(RouteError::DumpInterrupted {
        request: REQUEST,
        attempts: DUMP_ATTEMPTS,
    })
}

/// Read the datagrams of the dump `request` into `buf` and `feed` each, until
/// the dump ends.
pub(crate) fn read_dump(
    socket: &Socket,
    buf: &mut Vec<u8>,
    request: &'static str,
    mut feed: impl FnMut(&[u8]) -> Result<Progress, RouteError>,
) -> Result<Progress, RouteError> {
    loop {
        socket::recv_datagram(socket, buf, 0).map_err(|source| RouteError::Recv {
            what: request,
            source,
        })?;
        match feed(buf)? {
            Progress::More => continue,
            end => return Ok(end),
        }
    }
}

/// `RTM_GETROUTE` with `NLM_F_DUMP` for every family and table.
pub(crate) fn dump_request(seq: u32) -> Vec<u8> {
    request(RouteNetlinkMessage::GetRoute(RouteMessage::default()), seq)
}

/// A request with `NLM_F_DUMP` and sequence number `seq`, serialized.
pub(crate) fn request(payload: RouteNetlinkMessage, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, payload.into());
    msg.finalize();
    let mut bytes = vec![0; msg.buffer_len()];
    msg.serialize(&mut bytes);
    bytes
}
