//! Observe stage, kernel side: the watcher's socket, registered with the async
//! runtime only while it is read.
//!
//! Each notification is a datagram of its own, and each datagram that reaches
//! a socket the runtime watches wakes the runtime's thread, whether or not
//! anything reads it then: on a node converging BGP (tens of thousands of route
//! changes a second) that alone is most of the agent's CPU, spent switching
//! tasks. After a burst the socket is taken off the runtime for a short calm and
//! the kernel queues what comes meanwhile; the next read takes it all at once.

use std::io;
use std::time::Instant;

use netlink_sys::Socket;
use tokio::io::unix::{AsyncFd, AsyncFdRegisterError};

/// The socket, and whether the runtime watches it.
enum State {
    Watched(AsyncFd<Socket>),
    Calm(Socket),
    /// Only while switching between the two.
    Moving,
}

/// A non-blocking netlink socket the runtime watches except during a calm.
pub(crate) struct PacedSocket {
    state: State,
    calm_until: Option<Instant>,
}

impl PacedSocket {
    /// Watch `socket` (made non-blocking). Must be called inside a Tokio
    /// runtime with I/O enabled.
    pub(crate) fn new(socket: Socket) -> io::Result<PacedSocket> {
        socket.set_non_blocking(true)?;
        let fd = register(socket).map_err(|e| e.into_parts().1)?;
        Ok(PacedSocket {
            state: State::Watched(fd),
            calm_until: None,
        })
    }

    /// The socket, for non-blocking reads and options.
    pub(crate) fn socket(&self) -> &Socket {
        match &self.state {
            State::Watched(fd) => fd.get_ref(),
            State::Calm(socket) => socket,
            State::Moving => unreachable!("the socket is always in place between calls"),
        }
    }

    /// Stop watching the socket until `until`: what arrives meanwhile waits in
    /// its queue, waking nothing.
    pub(crate) fn calm(&mut self, until: Instant) {
        self.state = match std::mem::replace(&mut self.state, State::Moving) {
            State::Watched(fd) => State::Calm(fd.into_inner()),
            other => other,
        };
        self.calm_until = Some(until);
    }

    /// Wait, after any calm, until a datagram is there, and read it into `buf`
    /// (whose spare capacity it fills); its whole length, which may exceed
    /// what `buf` took (`MSG_TRUNC`). Cancel-safe: nothing is read before the
    /// datagram is returned.
    pub(crate) async fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if let Some(until) = self.calm_until {
            tokio::time::sleep_until(until.into()).await;
            self.calm_until = None;
        }
        self.watch()?;
        let State::Watched(fd) = &self.state else {
            return Err(io::Error::other("the watcher socket is not watched"));
        };
        loop {
            let mut guard = fd.readable().await?;
            match guard.try_io(|s| s.get_ref().recv(buf, nix::libc::MSG_TRUNC)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    fn watch(&mut self) -> io::Result<()> {
        if let State::Calm(_) = self.state {
            match register(self.take_calm()) {
                Ok(fd) => self.state = State::Watched(fd),
                Err(e) => {
                    let (socket, error) = e.into_parts();
                    self.state = State::Calm(socket);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    fn take_calm(&mut self) -> Socket {
        match std::mem::replace(&mut self.state, State::Moving) {
            State::Calm(socket) => socket,
            _ => unreachable!("take_calm is called in the calm state only"),
        }
    }
}

/// Register the socket with the runtime. `AsyncFd::try_new` is deprecated
/// because a type could hand out another descriptor than the one registered
/// (tokio#8587); `netlink_sys::Socket` owns its descriptor from creation to
/// drop and always returns that one, which is the condition tokio states. The
/// unsafe `AsyncFd::register` says the same with `unsafe`, which this crate
/// forbids.
#[allow(deprecated)]
fn register(socket: Socket) -> Result<AsyncFd<Socket>, AsyncFdRegisterError<Socket>> {
    AsyncFd::try_new(socket)
}
