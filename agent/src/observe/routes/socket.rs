//! Observe stage, kernel side: opening `NETLINK_ROUTE` sockets and reading one
//! datagram at a time into a reusable buffer.

use std::io;

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};

use super::error::RouteError;

/// Initial size of the reusable read buffer. The kernel fills dump datagrams up
/// to 32 KiB; anything longer is sized with a peek first.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// A bound `NETLINK_ROUTE` socket of the calling thread's network namespace.
pub(crate) fn open(purpose: &'static str) -> Result<Socket, RouteError> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(RouteError::socket("open", purpose))?;
    socket.bind_auto().map_err(RouteError::socket("bind", purpose))?;
    Ok(socket)
}

/// Ask for a receive buffer of `bytes`: `SO_RCVBUFFORCE` when privileged, else
/// `SO_RCVBUF` (silently capped by `net.core.rmem_max`).
pub(crate) fn raise_receive_buffer(socket: &Socket, bytes: usize) {
    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
    let forced = usize::try_from(bytes).unwrap_or_default();
    if setsockopt(socket, sockopt::RcvBufForce, &forced).is_err() {
        // Not privileged: the ordinary option, capped by the kernel.
        let _ = socket.set_rx_buf_sz(bytes);
    }
}

/// Send one request to the kernel.
pub(crate) fn send(socket: &Socket, bytes: &[u8], request: &'static str) -> Result<(), RouteError> {
    let kernel = SocketAddr::new(0, 0);
    match socket.send_to(bytes, &kernel, 0) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(n) => Err(RouteError::Send {
            request,
            source: io::Error::other(format!("short write: {n} of {} bytes", bytes.len())),
        }),
        Err(source) => Err(RouteError::Send { request, source }),
    }
}

/// Read one whole datagram into `buf` (replacing its contents), growing `buf`
/// first when the datagram is longer than its capacity.
pub(crate) fn recv_datagram(socket: &Socket, buf: &mut Vec<u8>, flags: i32) -> io::Result<()> {
    let mut empty: &mut [u8] = &mut [];
    let size = socket.recv(&mut empty, flags | nix::libc::MSG_PEEK | nix::libc::MSG_TRUNC)?;
    buf.clear();
    buf.reserve(size.max(READ_BUFFER));
    socket.recv(buf, flags)?;
    Ok(())
}
