//! Observe stage, D-Bus: which bus to talk to and one connection to it. The
//! systemd and NetworkManager sides both start here, each with its own typed error.

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
    fn address_precedence() {
        let env = Some("unix:path=/env/socket".to_owned());
        assert_eq!(bus_address(Some("unix:path=/x"), env.clone()), "unix:path=/x");
        assert_eq!(bus_address(None, env), "unix:path=/env/socket");
        assert_eq!(bus_address(None, Some(" ".to_owned())), DEFAULT_SYSTEM_BUS);
        assert_eq!(bus_address(None, None), DEFAULT_SYSTEM_BUS);
    }
}
