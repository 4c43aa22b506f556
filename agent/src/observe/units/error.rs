//! Observe stage, systemd side: what can go wrong talking to systemd over D-Bus.
//!
//! Each error names the bus address or the unit it concerns, and [`UnitsError::kind`]
//! gives a fixed string for the `kind` label of an error metric.

use std::time::Duration;

use crate::observe::bus::BusError;

/// Name of the error systemd answers a second `Subscribe` from the same client with.
const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";

/// Why systemd's unit state could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    /// The bus failed: it cannot be reached, a call got no answer in time, or
    /// the connection is gone.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A method call failed.
    #[error("{method} for {target} on D-Bus at {address} failed: {source}")]
    Call {
        /// The bus address.
        address: String,
        /// The D-Bus method (`ListUnitsByNames`, `GetAll`, `Subscribe`, `AddMatch`).
        method: &'static str,
        /// The units or object it was called for.
        target: String,
        /// What zbus reported.
        #[source]
        source: Box<zbus::Error>,
    },
    /// A property is missing or has an unexpected type.
    #[error("unit {unit}: property {interface}.{property} {problem}")]
    Property {
        /// The unit.
        unit: String,
        /// The D-Bus interface the property belongs to.
        interface: &'static str,
        /// The property.
        property: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// systemd answered with a shape that does not fit the question.
    #[error("{method} on D-Bus at {address} answered {got} rows for {asked} units ({target})")]
    Reply {
        /// The bus address.
        address: String,
        /// The D-Bus method.
        method: &'static str,
        /// The units asked for.
        target: String,
        /// How many units were asked for.
        asked: usize,
        /// How many rows came back.
        got: usize,
    },
}

impl UnitsError {
    /// A fixed string naming the kind of error, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            UnitsError::Bus(e) => e.kind(),
            UnitsError::Call { .. } => "call",
            UnitsError::Property { .. } => "property",
            UnitsError::Reply { .. } => "reply",
        }
    }

    /// True when the connection is gone and only a reconnect helps.
    pub fn is_closed(&self) -> bool {
        matches!(self, UnitsError::Bus(BusError::Closed { .. }))
    }
}

/// Where a failed call happened, to build its error.
pub(crate) struct CallSite<'a> {
    /// The bus address.
    pub address: &'a str,
    /// The D-Bus method.
    pub method: &'static str,
    /// The units or object it was called for.
    pub target: String,
    /// The connection's method timeout.
    pub timeout: Duration,
    /// Whether the connection was closed when the call failed.
    pub closed: bool,
}

impl CallSite<'_> {
    /// Classify a failed call: timed out, connection gone, or refused.
    pub(crate) fn error(self, source: zbus::Error) -> UnitsError {
        let what = || format!("{} for {}", self.method, self.target);
        if let Some(bus) = BusError::of_call(self.address, &source, self.closed, what, self.timeout) {
            return bus.into();
        }
        let address = self.address.to_owned();
        UnitsError::Call {
            address,
            method: self.method,
            target: self.target,
            source: Box::new(source),
        }
    }
}

/// True for systemd's refusal of a second `Subscribe` from the same connection.
pub(crate) fn is_already_subscribed(err: &zbus::Error) -> bool {
    matches!(err, zbus::Error::MethodError(name, _, _) if name.as_str() == ALREADY_SUBSCRIBED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Arc;

    fn site(closed: bool) -> CallSite<'static> {
        CallSite {
            address: "unix:path=/run/dbus/system_bus_socket",
            method: "GetAll",
            target: "a.service".to_owned(),
            timeout: Duration::from_secs(10),
            closed,
        }
    }

    #[test]
    fn timeouts_are_told_apart_from_failures() {
        let io = io::Error::new(io::ErrorKind::TimedOut, "no answer");
        let err = site(false).error(zbus::Error::InputOutput(Arc::new(io)));
        assert_eq!(err.kind(), "timeout");
        let text = err.to_string();
        assert!(text.contains("GetAll for a.service"), "{text}");
        assert!(text.contains("system_bus_socket"), "{text}");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address_once() {
        let address = "unix:path=/nonexistent/routewarden-test-bus";
        let Err(err) =
            crate::observe::units::Systemd::connect_timeout(Some(address), Duration::from_secs(5)).await
        else {
            panic!("connected to {address}");
        };
        assert_eq!(err.kind(), "connect");
        let text = err.to_string();
        assert_eq!(text.matches("routewarden-test-bus").count(), 1, "{text}");
        assert!(text.ends_with("No such file or directory (os error 2)"), "{text}");
    }

    #[test]
    fn a_failure_on_a_closed_connection_is_closed() {
        let err = site(true).error(zbus::Error::InvalidReply);
        assert_eq!(err.kind(), "closed");
        assert!(err.is_closed());
        let err = site(false).error(zbus::Error::InvalidReply);
        assert_eq!(err.kind(), "call");
        assert!(err.to_string().contains("a.service"));
    }
}
