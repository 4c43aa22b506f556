//! Observe stage, NetworkManager side: what can go wrong asking NetworkManager
//! over D-Bus. Each error names the bus address or the object it concerns;
//! [`NmError::kind`] gives a fixed string for metric labels and logs.

use std::time::Duration;

use crate::observe::bus::BusError;

/// D-Bus errors that mean "nobody owns that name": NetworkManager is not running.
const NOT_RUNNING: [&str; 2] = [
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
];
/// D-Bus errors that mean the object went away between a signal and the read.
const GONE: [&str; 2] = [
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownMethod",
];
/// `GetAppliedConnection` on a device that is not (or no longer) activated.
const NOT_ACTIVE: &str = "org.freedesktop.NetworkManager.Device.NotActive";

/// Why NetworkManager's view could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum NmError {
    /// The bus failed: it cannot be reached, a call got no answer in time, or
    /// the connection is gone.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Nobody owns `org.freedesktop.NetworkManager` on the bus.
    #[error(
        "NetworkManager is not running (org.freedesktop.NetworkManager has no owner on D-Bus at {address})"
    )]
    NotRunning {
        /// The bus address.
        address: String,
    },
    /// A method call failed.
    #[error("{method} for {target} on D-Bus at {address} failed: {source}")]
    Call {
        /// The bus address.
        address: String,
        /// The D-Bus method (`GetDevices`, `GetSettings`, `GetAll`, `AddMatch`...).
        method: &'static str,
        /// The object it was called on.
        target: String,
        /// What zbus reported.
        #[source]
        source: Box<zbus::Error>,
    },
    /// A reply lacks a field routewarden reads, or holds a value it cannot use.
    #[error("{object}: {problem}")]
    Reply {
        /// The object path, and the setting or property (`ipv4.route-data[2]`).
        object: String,
        /// What is wrong, in plain words (never secrets: none are in these replies).
        problem: String,
    },
}

impl NmError {
    /// A fixed string naming the kind of error, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            NmError::Bus(e) => e.kind(),
            NmError::NotRunning { .. } => "not-running",
            NmError::Call { .. } => "call",
            NmError::Reply { .. } => "reply",
        }
    }

    /// True when the connection is gone and only a reconnect helps.
    pub fn is_closed(&self) -> bool {
        matches!(self, NmError::Bus(BusError::Closed { .. }))
    }

    /// True when the object the call was made on no longer exists.
    pub fn is_gone(&self) -> bool {
        matches!(self, NmError::Call { source, .. } if method_error_in(source, &GONE))
    }

    /// True when NetworkManager itself refused a call on one object (a profile
    /// the caller may not read, say): that object is left out, the rest is read.
    pub fn is_refused(&self) -> bool {
        matches!(self, NmError::Call { source, .. }
            if matches!(&**source, zbus::Error::MethodError(name, _, _)
                if name.as_str().starts_with("org.freedesktop.NetworkManager.")))
    }

    /// True when `GetAppliedConnection` found the device not activated.
    pub fn is_not_active(&self) -> bool {
        matches!(self, NmError::Call { source, .. } if method_error_in(source, &[NOT_ACTIVE]))
    }
}

/// True when `err` is a D-Bus error reply with one of `names`.
fn method_error_in(err: &zbus::Error, names: &[&str]) -> bool {
    crate::observe::bus::error_name(err).is_some_and(|name| names.contains(&name.as_str()))
}

/// Where a call happens, to build its error.
pub(crate) struct CallSite<'a> {
    /// The bus address.
    pub address: &'a str,
    /// The D-Bus method.
    pub method: &'static str,
    /// The object it was called on.
    pub target: String,
    /// The connection's method timeout.
    pub timeout: Duration,
    /// Whether the connection was closed when the call failed.
    pub closed: bool,
}

impl CallSite<'_> {
    /// Classify a failed call: timed out, connection gone, NetworkManager gone, or refused.
    pub(crate) fn error(self, source: zbus::Error) -> NmError {
        let what = || format!("{} for {}", self.method, self.target);
        if let Some(bus) = BusError::of_call(self.address, &source, self.closed, what, self.timeout) {
            return bus.into();
        }
        let address = self.address.to_owned();
        if method_error_in(&source, &NOT_RUNNING) {
            return NmError::NotRunning { address };
        }
        NmError::Call {
            address,
            method: self.method,
            target: self.target,
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Arc;
    use zbus::names::OwnedErrorName;

    fn site(closed: bool) -> CallSite<'static> {
        CallSite {
            address: "unix:path=/run/dbus/system_bus_socket",
            method: "GetSettings",
            target: "/org/freedesktop/NetworkManager/Settings/3".to_owned(),
            timeout: Duration::from_secs(10),
            closed,
        }
    }

    fn dbus_error(name: &str) -> zbus::Error {
        let name = OwnedErrorName::try_from(name.to_owned()).expect("valid error name");
        let msg = zbus::Message::method_call("/", "Ping")
            .build(&())
            .expect("message");
        zbus::Error::MethodError(name, Some("told so".to_owned()), msg)
    }

    #[test]
    fn errors_are_classified() {
        let io = io::Error::new(io::ErrorKind::TimedOut, "no answer");
        let err = site(false).error(zbus::Error::InputOutput(Arc::new(io)));
        assert_eq!(err.kind(), "timeout");
        assert!(err
            .to_string()
            .contains("GetSettings for /org/freedesktop/NetworkManager/Settings/3"));
        assert!(site(true).error(zbus::Error::InvalidReply).is_closed());
        let err = site(false).error(dbus_error("org.freedesktop.DBus.Error.ServiceUnknown"));
        assert_eq!(err.kind(), "not-running");
        let fdo =
            zbus::fdo::Error::NameHasNoOwner("Name \"org.freedesktop.NetworkManager\" does not exist".into());
        let err = site(false).error(zbus::Error::FDO(Box::new(fdo)));
        assert_eq!(
            err.kind(),
            "not-running",
            "as zbus reports D-Bus's own errors: {err}"
        );
        assert!(err.to_string().contains("NetworkManager is not running"), "{err}");
        let err = site(false).error(dbus_error("org.freedesktop.DBus.Error.UnknownObject"));
        assert!(err.is_gone() && !err.is_not_active());
        let err = site(false).error(dbus_error(NOT_ACTIVE));
        assert!(err.is_not_active() && !err.is_gone());
        let err = site(false).error(dbus_error(
            "org.freedesktop.NetworkManager.Settings.PermissionDenied",
        ));
        assert!(err.is_refused() && !err.is_gone());
        assert_eq!(err.kind(), "call");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address_once_as_on_the_systemd_side() {
        let address = "unix:path=/nonexistent/routewarden-test-nm-bus";
        let Err(err) = crate::observe::networkmanager::NetworkManager::connect(Some(address)).await else {
            panic!("connected to {address}");
        };
        assert_eq!(err.kind(), "connect");
        let text = err.to_string();
        assert_eq!(text.matches("routewarden-test-nm-bus").count(), 1, "{text}");
        assert!(text.ends_with("No such file or directory (os error 2)"), "{text}");
    }
}
