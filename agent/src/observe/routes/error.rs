//! Observe stage, kernel side: what can go wrong talking to the kernel over
//! `NETLINK_ROUTE`, with a fixed [`RouteError::kind`] for metric labels.

use std::io;

/// The place every message names: the rtnetlink socket of the current namespace.
const PLACE: &str = "NETLINK_ROUTE socket of the current network namespace";

/// A failure reading routes, links or addresses from the kernel.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The socket could not be opened, bound, or configured.
    #[error("cannot {action} the {PLACE} (for {purpose}): {source}")]
    Socket {
        /// What was attempted: "open", "bind", "join multicast group 7 on"...
        action: String,
        /// What the socket was for: "route dump", "event watcher", "link dump".
        purpose: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A request could not be sent.
    #[error("cannot send {request} on the {PLACE}: {source}")]
    Send {
        /// The request, e.g. "RTM_GETROUTE dump".
        request: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading from the socket failed.
    #[error("cannot receive {what} from the {PLACE}: {source}")]
    Recv {
        /// What was being read, e.g. "RTM_GETROUTE dump".
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel sent bytes that do not decode.
    #[error("cannot parse {what} received from the {PLACE}: {reason}")]
    Parse {
        /// What was being decoded, e.g. "RTM_NEWROUTE message".
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// The kernel answered a request with an error.
    #[error("the kernel refused {request} on the {PLACE}: {source}")]
    Kernel {
        /// The request, e.g. "RTM_GETROUTE dump".
        request: &'static str,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The routing table kept changing while it was dumped (`NLM_F_DUMP_INTR`).
    #[error(
        "{request} on the {PLACE} was interrupted by concurrent changes \
         {attempts} times in a row"
    )]
    DumpInterrupted {
        /// The request, e.g. "RTM_GETROUTE dump".
        request: &'static str,
        /// How many dumps were tried.
        attempts: u32,
    },
    /// A request made through the rtnetlink crate failed.
    #[error("{request} on the {PLACE} failed: {source}")]
    Rtnetlink {
        /// The request, e.g. "RTM_GETLINK dump".
        request: &'static str,
        /// The rtnetlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

impl RouteError {
    /// A fixed label for metrics: `socket`, `send`, `recv`, `parse`, `kernel`,
    /// `dump-interrupted` or `rtnetlink`.
    pub fn kind(&self) -> &'static str {
        match self {
            RouteError::Socket { .. } => "socket",
            RouteError::Send { .. } => "send",
            RouteError::Recv { .. } => "recv",
            RouteError::Parse { .. } => "parse",
            RouteError::Kernel { .. } => "kernel",
            RouteError::DumpInterrupted { .. } => "dump-interrupted",
            RouteError::Rtnetlink { .. } => "rtnetlink",
        }
    }

    /// A [`RouteError::Socket`].
    pub(crate) fn socket(
        action: impl Into<String>,
        purpose: &'static str,
    ) -> impl FnOnce(io::Error) -> RouteError {
        let action = action.into();
        move |source| RouteError::Socket {
            action,
            purpose,
            source,
        }
    }

    /// A [`RouteError::Parse`].
    pub(crate) fn parse(what: &'static str, reason: impl ToString) -> RouteError {
        RouteError::Parse {
            what,
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_fixed_and_messages_name_the_socket() {
        let e = RouteError::DumpInterrupted {
            request: "RTM_GETRULE dump",
            attempts: 5,
        };
        assert!(e.to_string().starts_with("RTM_GETRULE dump on the"), "{e}");
        assert_eq!(e.kind(), "dump-interrupted");
        assert!(e.to_string().contains("NETLINK_ROUTE socket"), "{e}");
        let e = RouteError::socket("open", "route dump")(io::Error::from_raw_os_error(1));
        assert_eq!(e.kind(), "socket");
        assert!(e.to_string().starts_with("cannot open the NETLINK_ROUTE"), "{e}");
        assert_eq!(RouteError::parse("RTM_NEWROUTE message", "short").kind(), "parse");
    }
}
