//! Observe stage, kernel side: the subscription to rtnetlink notifications of
//! routes (IPv4, IPv6), next-hop objects, links, addresses and policy-routing
//! rules (IPv4, IPv6), on a socket of its own.
//!
//! Lost notifications are not an error: the kernel reports them as `ENOBUFS`,
//! which becomes [`Event::Overrun`], and the consumer dumps again. Until the
//! socket's queue is empty again the kernel silently drops every new
//! notification, so the watcher empties it before it reports the overrun.

use std::collections::VecDeque;
use std::io;

use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, TokioSocket};

use super::error::RouteError;
use super::events::{decode_datagram, Event};
use super::socket::{self, READ_BUFFER};

const PURPOSE: &str = "event watcher";
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV6_IFADDR: u32 = 9;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
const RTNLGRP_NEXTHOP: u32 = 32;
const RTNLGRP_IPV4_RULE: u32 = 8;
const RTNLGRP_IPV6_RULE: u32 = 19;
const GROUPS: [u32; 8] = [
    RTNLGRP_LINK,
    RTNLGRP_IPV4_IFADDR,
    RTNLGRP_IPV4_ROUTE,
    RTNLGRP_IPV6_IFADDR,
    RTNLGRP_IPV6_ROUTE,
    RTNLGRP_NEXTHOP,
    RTNLGRP_IPV4_RULE,
    RTNLGRP_IPV6_RULE,
];

/// Receive buffer asked for the watcher socket: about ten thousand route
/// notifications can wait there before the kernel drops some.
pub const WATCH_RECEIVE_BUFFER: usize = 8 * 1024 * 1024;

/// A subscription to route, link and address changes in the network namespace
/// of the thread that created it.
pub struct Watcher {
    socket: TokioSocket,
    buf: Vec<u8>,
    pending: VecDeque<Event>,
    deferred: Option<RouteError>,
}

impl Watcher {
    /// Open the socket, raise its receive buffer to [`WATCH_RECEIVE_BUFFER`]
    /// (`SO_RCVBUFFORCE` when privileged, else `SO_RCVBUF` up to
    /// `net.core.rmem_max`) and join the multicast groups `RTNLGRP_LINK`,
    /// `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`, `RTNLGRP_IPV4_ROUTE`,
    /// `RTNLGRP_IPV6_ROUTE`, `RTNLGRP_NEXTHOP`, `RTNLGRP_IPV4_RULE` and
    /// `RTNLGRP_IPV6_RULE`. Must be called inside a Tokio runtime with I/O enabled.
    pub fn new() -> Result<Watcher, RouteError> {
        tokio::runtime::Handle::try_current()
            .map_err(|e| RouteError::socket("register", PURPOSE)(io::Error::other(e)))?;
        let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(RouteError::socket("open", PURPOSE))?;
        let inner = socket.socket_mut();
        inner.bind_auto().map_err(RouteError::socket("bind", PURPOSE))?;
        socket::raise_receive_buffer(inner, WATCH_RECEIVE_BUFFER);
        for group in GROUPS {
            match inner.add_membership(group) {
                // Kernels before 5.3 have no next-hop objects, so no route uses one.
                Err(e) if group == RTNLGRP_NEXTHOP => {
                    tracing::debug!(error = %e, "no next-hop notifications on this kernel")
                }
                joined => joined.map_err(RouteError::socket(
                    format!("join multicast group {group} on"),
                    PURPOSE,
                ))?,
            }
        }
        Ok(Watcher {
            socket,
            buf: Vec::with_capacity(READ_BUFFER),
            pending: VecDeque::new(),
            deferred: None,
        })
    }

    /// The receive buffer the kernel granted, in bytes (twice what was set).
    pub fn receive_buffer(&self) -> usize {
        self.socket.socket_ref().get_rx_buf_sz().unwrap_or(0)
    }

    /// The next event, waiting for one.
    ///
    /// After an `Err`, the watcher stays usable but events may have been missed:
    /// treat it like [`Event::Overrun`] and dump again. Cancel-safe (e.g. in
    /// `tokio::select!`): a dropped call loses no event.
    pub async fn next(&mut self) -> Result<Event, RouteError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            self.wait_and_read().await?;
        }
    }

    /// Wait for at least one event, then take, without waiting, every event
    /// already queued on the socket, up to `max` (at least one). Meant for a
    /// consumer that coalesces bursts: one re-evaluation per batch.
    ///
    /// An error met after the first event ends the batch and is returned by the
    /// next call. Cancel-safe like [`Watcher::next`].
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Event>, RouteError> {
        let mut batch = vec![self.next().await?];
        while batch.len() < max.max(1) {
            if let Some(event) = self.pending.pop_front() {
                batch.push(event);
                continue;
            }
            match self.try_read() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    self.deferred = Some(e);
                    break;
                }
            }
        }
        Ok(batch)
    }

    /// Read one datagram, waiting for one when none is queued.
    async fn wait_and_read(&mut self) -> Result<(), RouteError> {
        if self.try_read()? {
            return Ok(());
        }
        // Waiting needs the runtime's readiness; this read sizes the datagram
        // with a peek and allocates it, once per wake-up.
        match self.socket.recv_from_full().await {
            Ok((datagram, _)) => decode_datagram(&datagram, &mut self.pending),
            Err(e) => self.failed(e),
        }
    }

    /// Read one datagram if one is queued; `false` when none is.
    fn try_read(&mut self) -> Result<bool, RouteError> {
        let socket = self.socket.socket_ref();
        match socket::recv_datagram(socket, &mut self.buf, nix::libc::MSG_DONTWAIT) {
            Ok(()) => decode_datagram(&self.buf, &mut self.pending).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => self.failed(e).map(|()| true),
        }
    }

    /// A failed read: `ENOBUFS` becomes [`Event::Overrun`], the rest errors.
    fn failed(&mut self, e: io::Error) -> Result<(), RouteError> {
        if e.raw_os_error() != Some(nix::libc::ENOBUFS) {
            return Err(recv_error(e));
        }
        self.discard_queued()?;
        self.pending.clear();
        self.pending.push_back(Event::Overrun);
        Ok(())
    }

    /// Empty the socket's queue. After an overrun the kernel drops every new
    /// notification, without telling, until the queue has been emptied: what is
    /// queued is stale anyway, and the consumer's dump must come after this.
    fn discard_queued(&mut self) -> Result<(), RouteError> {
        let socket = self.socket.socket_ref();
        let flags = nix::libc::MSG_DONTWAIT | nix::libc::MSG_TRUNC;
        loop {
            self.buf.clear();
            match socket.recv(&mut self.buf, flags) {
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(recv_error(e)),
            }
        }
    }
}

fn recv_error(source: io::Error) -> RouteError {
    RouteError::Recv {
        what: "route, rule, link and address notifications",
        source,
    }
}
