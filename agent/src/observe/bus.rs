//! Observe stage, D-Bus: which bus to talk to, one connection to it, and the
//! failures of the bus itself ([`BusError`]). The systemd and NetworkManager
//! sides both start here, each with its own typed error wrapping [`BusError`].

use std::io;
use std::time::Duration;

use zbus::connection::Builder;
use zbus::Connection;

/// How long connecting waits for the bus to accept and authenticate us.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one method call waits for its answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The system bus when neither an address nor `DBUS_SYSTEM_BUS_ADDRESS` is given.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/var/run/dbus/system_bus_socket";

/// The bus address to use: the explicit one, else `DBUS_SYSTEM_BUS_ADDRESS` (when
/// not empty), else the system bus.
pub fn bus_address(explicit: Option<&str>, env: Option<String>) -> String {
    match (explicit, env) {
        (Some(address), _) => address.to_owned(),
        (None, Some(address)) if !address.trim().is_empty() => address,
        _ => DEFAULT_SYSTEM_BUS.to_owned(),
    }
}

/// What can go wrong with the bus itself, whichever service is asked. Each
/// error names the bus address; [`BusError::kind`] gives a fixed string for
/// metric labels and logs.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus could not be reached, or refused the connection.
    #[error("cannot connect to D-Bus at {address}: {}", connect_cause(source))]
    Connect {
        /// The bus address tried.
        address: String,
        /// What zbus reported.
        #[source]
        source: Box<zbus::Error>,
    },
    /// No answer came in time.
    #[error("{what} on D-Bus at {address} timed out after {after:?}")]
    Timeout {
        /// The bus address.
        address: String,
        /// What was waited for (`connecting`, `GetAll for a.service`).
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// The connection to the bus is gone: reconnect.
    #[error("the connection to D-Bus at {address} is closed")]
    Closed {
        /// The bus address.
        address: String,
    },
}

impl BusError {
    /// A fixed string naming the kind of error, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            BusError::Connect { .. } => "connect",
            BusError::Timeout { .. } => "timeout",
            BusError::Closed { .. } => "closed",
        }
    }

    /// A failed call's failure of the bus itself, if it is one: it timed out
    /// (`what` names the call), or the connection was `closed` when it failed.
    pub(crate) fn of_call(
        address: &str,
        source: &zbus::Error,
        closed: bool,
        what: impl FnOnce() -> String,
        after: Duration,
    ) -> Option<BusError> {
        let address = address.to_owned();
        if is_timeout(source) {
            return Some(BusError::Timeout {
                address,
                what: what(),
                after,
            });
        }
        closed.then_some(BusError::Closed { address })
    }
}

/// What stopped a connection, without the address zbus repeats in its message.
fn connect_cause(source: &zbus::Error) -> String {
    match source {
        zbus::Error::Connection(io, _) => io.to_string(),
        other => other.to_string(),
    }
}

/// Why a connection could not be made.
pub(crate) enum ConnectFailure {
    /// The bus refused it, or is not there.
    Refused(Box<zbus::Error>),
    /// No answer within the timeout.
    TimedOut,
}

/// Connect to `address` (else the environment's, else the system bus) with
/// [`CALL_TIMEOUT`] on every call; the address used, and the connection or why not.
pub(crate) async fn connect(
    address: Option<&str>,
    timeout: Duration,
) -> (String, Result<Connection, ConnectFailure>) {
    let address = bus_address(address, std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok());
    let build = Builder::address(address.as_str())
        .method_timeout(CALL_TIMEOUT)
        .build();
    let result = match tokio::time::timeout(timeout, build).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(ConnectFailure::Refused(Box::new(source))),
        Err(_) => Err(ConnectFailure::TimedOut),
    };
    (address, result)
}

/// [`connect`] for a source of truth: the connection and the address used, or
/// the [`BusError`] its error wraps.
pub(crate) async fn open(address: Option<&str>, timeout: Duration) -> Result<(Connection, String), BusError> {
    match connect(address, timeout).await {
        (address, Ok(conn)) => Ok((conn, address)),
        (address, Err(ConnectFailure::Refused(source))) => Err(BusError::Connect { address, source }),
        (address, Err(ConnectFailure::TimedOut)) => Err(BusError::Timeout {
            address,
            what: "connecting".to_owned(),
            after: timeout,
        }),
    }
}

/// The D-Bus error name of a failed call: zbus reports D-Bus's own errors
/// (`org.freedesktop.DBus.Error.*`) as `Error::FDO`, every other as
/// `Error::MethodError`.
pub(crate) fn error_name(err: &zbus::Error) -> Option<String> {
    match err {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str().to_owned()),
        zbus::Error::FDO(fdo) => Some(zbus::DBusError::name(&**fdo).as_str().to_owned()),
        _ => None,
    }
}

/// True for zbus's report of a method call that got no answer in time.
pub(crate) fn is_timeout(err: &zbus::Error) -> bool {
    matches!(err, zbus::Error::InputOutput(io) if io.kind() == io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_whichever_way_zbus_reports_them() {
        let fdo = zbus::Error::FDO(Box::new(zbus::fdo::Error::NameHasNoOwner("gone".into())));
        assert_eq!(
            error_name(&fdo).as_deref(),
            Some("org.freedesktop.DBus.Error.NameHasNoOwner")
        );
        assert_eq!(error_name(&zbus::Error::InvalidReply), None);
    }

    #[test]
    fn a_call_that_timed_out_or_found_the_connection_closed_is_the_bus() {
        let address = "unix:path=/run/dbus/system_bus_socket";
        let after = Duration::from_secs(10);
        let timed_out = zbus::Error::InputOutput(std::sync::Arc::new(io::Error::new(
            io::ErrorKind::TimedOut,
            "no answer",
        )));
        let err = BusError::of_call(address, &timed_out, true, || "GetAll for a.service".into(), after)
            .expect("a timeout");
        assert_eq!(err.kind(), "timeout", "a timeout even on a closed connection");
        assert_eq!(
            err.to_string(),
            "GetAll for a.service on D-Bus at unix:path=/run/dbus/system_bus_socket timed out after 10s"
        );
        let closed = BusError::of_call(address, &zbus::Error::InvalidReply, true, String::new, after);
        assert_eq!(closed.map(|e| e.kind()), Some("closed"));
        let refused = BusError::of_call(address, &zbus::Error::InvalidReply, false, String::new, after);
        assert!(
            refused.is_none(),
            "the call's own failure, for its source to classify"
        );
    }

    #[test]
    fn address_precedence() {
        let env = Some("unix:path=/env/socket".to_owned());
        assert_eq!(bus_address(Some("unix:path=/x"), env.clone()), "unix:path=/x");
        assert_eq!(bus_address(None, env), "unix:path=/env/socket");
        assert_eq!(bus_address(None, Some(" ".to_owned())), DEFAULT_SYSTEM_BUS);
        assert_eq!(bus_address(None, None), DEFAULT_SYSTEM_BUS);
    }
}
