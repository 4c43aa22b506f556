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
use std::time::{Duration, Instant};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use super::error::RouteError;
use super::events::{decode_datagram, Event};
use super::frames::Wanted;
use super::paced::PacedSocket;
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
/// A batch of at least this many notifications is a burst (a BGP node
/// converging): the socket then calms for [`CALM`] before the next read, so
/// that one wake-up takes many notifications. A lone change is read at once.
pub const BURST: usize = 64;
/// How long the socket calms after a burst: the most a change waits while
/// routes churn. Ten thousand notifications fit in the receive buffer, about a
/// third of a second at the fastest churn measured.
pub const CALM: Duration = Duration::from_millis(10);

/// A subscription to route, link and address changes in the network namespace
/// of the thread that created it.
pub struct Watcher {
    socket: PacedSocket,
    buf: Vec<u8>,
    pending: VecDeque<Event>,
    deferred: Option<RouteError>,
    filter: Option<Wanted>,
    skipped: u64,
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
        let mut inner = Socket::new(NETLINK_ROUTE).map_err(RouteError::socket("open", PURPOSE))?;
        inner.bind_auto().map_err(RouteError::socket("bind", PURPOSE))?;
        socket::raise_receive_buffer(&inner, WATCH_RECEIVE_BUFFER);
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
        let socket = PacedSocket::new(inner).map_err(RouteError::socket("register", PURPOSE))?;
        Ok(Watcher {
            socket,
            buf: Vec::with_capacity(READ_BUFFER),
            pending: VecDeque::new(),
            deferred: None,
            filter: None,
            skipped: 0,
        })
    }

    /// Report only the route notifications whose key `wanted` holds (all when
    /// `None`); the others are read no further than their key and counted
    /// ([`Watcher::take_skipped`]). On a node that sees routes come and go by
    /// the hundred thousand, decoding only what the intent names is most of the
    /// watcher's cost saved.
    pub fn filter_routes(&mut self, wanted: Option<Wanted>) {
        self.filter = wanted;
    }

    /// How many route notifications the filter skipped since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// The receive buffer the kernel granted, in bytes (twice what was set).
    pub fn receive_buffer(&self) -> usize {
        self.socket.socket().get_rx_buf_sz().unwrap_or(0)
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

    /// Wait for at least one notification, then take, without waiting, every
    /// event already queued on the socket, up to `max`. Meant for a consumer
    /// that coalesces bursts: one re-evaluation per batch. The batch is empty
    /// when every notification read was one the filter skips.
    ///
    /// An error met after the first notification ends the batch and is
    /// returned by the next call. Cancel-safe like [`Watcher::next`].
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Event>, RouteError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let skipped = self.skipped;
        while self.pending.is_empty() && self.skipped == skipped {
            self.wait_and_read().await?;
        }
        let skipped_before = skipped;
        let mut batch = Vec::new();
        loop {
            while batch.len() < max.max(1) {
                match self.pending.pop_front() {
                    Some(event) => batch.push(event),
                    None => break,
                }
            }
            if batch.len() >= max.max(1) {
                break;
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
        let notifications = batch.len() as u64 + (self.skipped - skipped_before);
        if notifications >= BURST as u64 {
            self.socket.calm(Instant::now() + CALM);
        }
        Ok(batch)
    }

    /// Read one datagram, waiting for one when none is queued.
    async fn wait_and_read(&mut self) -> Result<(), RouteError> {
        if self.try_read()? {
            return Ok(());
        }
        self.buf.clear();
        self.buf.reserve(READ_BUFFER);
        match self.socket.recv(&mut self.buf).await {
            Ok(len) => self.received(len),
            Err(e) => self.failed(e),
        }
    }

    /// Read one datagram if one is queued (one system call, into the reused
    /// buffer); `false` when none is.
    fn try_read(&mut self) -> Result<bool, RouteError> {
        self.buf.clear();
        self.buf.reserve(READ_BUFFER);
        let flags = nix::libc::MSG_DONTWAIT | nix::libc::MSG_TRUNC;
        match self.socket.socket().recv(&mut self.buf, flags) {
            Ok(len) => self.received(len).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => self.failed(e).map(|()| true),
        }
    }

    /// Decode the datagram of `len` bytes in the buffer; one longer than the
    /// buffer lost its end, as an overrun loses notifications.
    fn received(&mut self, len: usize) -> Result<(), RouteError> {
        if len > self.buf.len() {
            return self.failed(io::Error::from_raw_os_error(nix::libc::ENOBUFS));
        }
        self.skipped += decode_datagram(&self.buf, self.filter.as_ref(), &mut self.pending)?;
        Ok(())
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
        let socket = self.socket.socket();
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
