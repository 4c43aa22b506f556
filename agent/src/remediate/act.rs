//! Remediation, acting: one action on one owner over the system bus, and how
//! it ended. A restart waits for systemd's job to end (a oneshot's job ends
//! when its commands have run), so `success` means the unit's commands ran; an
//! activation waits until NetworkManager says the connection is activated (or
//! is not); a re-apply is done when NetworkManager answers.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use zbus::Connection;
use zbus::ObjectPath;

use super::decide::{Action, Target};
use super::proxy::{
    ActiveConnectionProxy, DeviceProxy, NetworkManagerProxy, SettingsProxy, SystemdManagerProxy,
};
use crate::model::{IfName, UnitName};
use crate::observe::bus::{connect, ConnectFailure, CONNECT_TIMEOUT};

/// How long a restart job may run before the attempt counts as failed (the job
/// itself goes on in systemd).
pub const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// How long an activation may take before the attempt counts as failed (as long
/// as `nmcli connection up` waits by default).
pub const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(90);

/// `NM_ACTIVE_CONNECTION_STATE_ACTIVATED` and `_DEACTIVATED`.
const ACTIVATED: u32 = 2;
const DEACTIVATED: u32 = 4;

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// No connection to the bus.
    #[error("cannot connect to the system bus at {address}: {why}")]
    Connect {
        /// The bus address.
        address: String,
        /// Why.
        why: String,
    },
    /// The owner refused: the agent lacks the privilege.
    #[error("{call} of {target} was refused ({why}): the agent lacks the privilege (polkit {action})")]
    Denied {
        /// The D-Bus method.
        call: &'static str,
        /// The unit, device or profile.
        target: String,
        /// The D-Bus error.
        why: String,
        /// The polkit action that grants it.
        action: &'static str,
    },
    /// Any other failed call.
    #[error("{call} of {target} failed: {why}")]
    Call {
        /// The D-Bus method.
        call: &'static str,
        /// The unit, device or profile.
        target: String,
        /// The D-Bus error.
        why: String,
    },
    /// The restart job ran and did not end `done`.
    #[error("the restart job of {unit} ended with result \"{result}\" (journalctl -b -u {unit} says why)")]
    Job {
        /// The unit.
        unit: UnitName,
        /// systemd's job result.
        result: String,
    },
    /// NetworkManager began the activation and it did not end activated.
    #[error("the activation of {target} {how} (journalctl -b -u NetworkManager says why)")]
    Activation {
        /// The profile and device.
        target: String,
        /// How it ended.
        how: String,
    },
    /// The restart job did not end in time.
    #[error("the restart job of {unit} did not end within {} s", JOB_TIMEOUT.as_secs())]
    JobTimeout {
        /// The unit.
        unit: UnitName,
    },
}

impl ActError {
    /// A static kind for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ActError::Connect { .. } => "connect",
            ActError::Denied { .. } => "denied",
            ActError::Call { .. } => "call",
            ActError::Job { .. } => "job",
            ActError::JobTimeout { .. } => "timeout",
            ActError::Activation { .. } => "activation",
        }
    }
}

const MANAGE_UNITS: &str = "org.freedesktop.systemd1.manage-units";
const NETWORK_CONTROL: &str = "org.freedesktop.NetworkManager.network-control";

/// Do `action` through the bus at `address` (else the environment's, else the
/// system bus).
pub async fn run(address: Option<&str>, action: &Action) -> Result<(), ActError> {
    let (address, conn) = connect(address, CONNECT_TIMEOUT).await;
    let conn = conn.map_err(|e| ActError::Connect {
        address,
        why: match e {
            ConnectFailure::Refused(e) => e.to_string(),
            ConnectFailure::TimedOut => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        },
    })?;
    match &action.target {
        Target::Unit(unit) => restart(&conn, unit).await,
        Target::Device(device) => reapply(&conn, device).await,
        Target::Profile { uuid, device } => activate(&conn, uuid, device).await,
    }
}

async fn restart(conn: &Connection, unit: &UnitName) -> Result<(), ActError> {
    let fail = |call| failure(call, unit.to_string(), MANAGE_UNITS);
    let manager = SystemdManagerProxy::new(conn)
        .await
        .map_err(fail("RestartUnit"))?;
    manager.subscribe().await.map_err(fail("Subscribe"))?;
    let mut removed = manager.receive_job_removed().await.map_err(fail("JobRemoved"))?;
    let job = manager
        .restart_unit(unit.as_str(), "replace")
        .await
        .map_err(fail("RestartUnit"))?;
    let ended = async {
        while let Some(signal) = removed.next().await {
            match signal.args() {
                Ok(args) if args.job == job => return Some(args.result),
                _ => continue,
            }
        }
        None
    };
    match tokio::time::timeout(JOB_TIMEOUT, ended).await {
        Ok(Some(result)) if result == "done" => Ok(()),
        Ok(Some(result)) => Err(ActError::Job {
            unit: unit.clone(),
            result,
        }),
        Ok(None) => Err(ActError::Call {
            call: "JobRemoved",
            target: unit.to_string(),
            why: "the bus connection closed before the job ended".into(),
        }),
        Err(_) => Err(ActError::JobTimeout { unit: unit.clone() }),
    }
}

async fn reapply(conn: &Connection, device: &IfName) -> Result<(), ActError> {
    let fail = |call| failure(call, device.to_string(), NETWORK_CONTROL);
    let path = device_path(conn, device).await?;
    let proxy = DeviceProxy::builder(conn)
        .path(path)
        .build()
        .await
        .map_err(fail("Reapply"))?;
    proxy.reapply(HashMap::new(), 0, 0).await.map_err(fail("Reapply"))
}

async fn activate(conn: &Connection, uuid: &str, device: &IfName) -> Result<(), ActError> {
    let target = format!("connection {uuid} on {device}");
    let fail = |call| failure(call, target.clone(), NETWORK_CONTROL);
    let settings = SettingsProxy::new(conn)
        .await
        .map_err(fail("GetConnectionByUuid"))?;
    let profile = settings
        .get_connection_by_uuid(uuid)
        .await
        .map_err(fail("GetConnectionByUuid"))?;
    let device = device_path(conn, device).await?;
    let nm = NetworkManagerProxy::new(conn)
        .await
        .map_err(fail("ActivateConnection"))?;
    let none = ObjectPath::from_static_str_unchecked("/");
    let active = nm
        .activate_connection(&profile, &device, &none)
        .await
        .map_err(fail("ActivateConnection"))?;
    activated(conn, active, target).await
}

/// Follow the active connection at `path` until it is activated (Ok), is
/// deactivated or gone, or [`ACTIVATION_TIMEOUT`] passes.
async fn activated(conn: &Connection, path: zbus::OwnedObjectPath, target: String) -> Result<(), ActError> {
    let fail = |call| failure(call, target.clone(), NETWORK_CONTROL);
    let proxy = ActiveConnectionProxy::builder(conn)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(fail("StateChanged"))?;
    let mut changes = proxy.receive_activation().await.map_err(fail("StateChanged"))?;
    let ended = async {
        // Read after subscribing, so that no change falls between the two.
        match proxy.state().await {
            Ok(ACTIVATED) => return Ok(()),
            Ok(DEACTIVATED) => return Err("was deactivated at once".to_owned()),
            Ok(_) => {}
            Err(_) => {
                return Err("ended before it could be followed (the active connection is gone)".to_owned())
            }
        }
        while let Some(change) = changes.next().await {
            match change.args() {
                Ok(args) => match activation_end(args.state, args.reason) {
                    Some(end) => return end,
                    None => continue,
                },
                Err(_) => continue,
            }
        }
        Err("was not followed to its end: the bus connection closed".to_owned())
    };
    let how = match tokio::time::timeout(ACTIVATION_TIMEOUT, ended).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(how)) => how,
        Err(_) => format!("did not end within {} s", ACTIVATION_TIMEOUT.as_secs()),
    };
    Err(ActError::Activation { target, how })
}

/// What a `StateChanged(state, reason)` of an active connection says of the
/// activation: ended well, ended badly (how), or not ended yet (None).
fn activation_end(state: u32, reason: u32) -> Option<Result<(), String>> {
    match state {
        ACTIVATED => Some(Ok(())),
        DEACTIVATED => Some(Err(format!(
            "ended deactivated: {}",
            match reason {
                2 => "disconnected by a user".to_owned(),
                3 => "the device disconnected".to_owned(),
                5 => "its IP configuration was invalid".to_owned(),
                6 => "it timed out connecting".to_owned(),
                11 => "the profile was removed".to_owned(),
                12 => "a connection it depends on failed".to_owned(),
                14 => "the device was removed".to_owned(),
                n => format!("NetworkManager's reason {n}"),
            }
        ))),
        _ => None,
    }
}

async fn device_path(conn: &Connection, device: &IfName) -> Result<zbus::OwnedObjectPath, ActError> {
    let fail = |call| failure(call, device.to_string(), NETWORK_CONTROL);
    let nm = NetworkManagerProxy::new(conn)
        .await
        .map_err(fail("GetDeviceByIpIface"))?;
    nm.get_device_by_ip_iface(device.as_str())
        .await
        .map_err(fail("GetDeviceByIpIface"))
}

/// A failed call as an [`ActError`]: a refusal when the bus or the owner says
/// the caller may not.
fn failure(call: &'static str, target: String, action: &'static str) -> impl Fn(zbus::Error) -> ActError {
    move |e| {
        let why = e.to_string();
        if is_denied(&e) {
            ActError::Denied {
                call,
                target: target.clone(),
                why,
                action,
            }
        } else {
            ActError::Call {
                call,
                target: target.clone(),
                why,
            }
        }
    }
}

/// The bus or the owner said no: D-Bus's own refusals or NetworkManager's.
fn is_denied(e: &zbus::Error) -> bool {
    crate::observe::bus::error_name(e).is_some_and(|name| {
        matches!(
            name.as_str(),
            "org.freedesktop.DBus.Error.AccessDenied"
                | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
                | "org.freedesktop.DBus.Error.AuthFailed"
                | "org.freedesktop.NetworkManager.PermissionDenied"
                | "org.freedesktop.NetworkManager.Settings.PermissionDenied"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activation_ends_activated_or_deactivated() {
        assert_eq!(activation_end(1, 0), None, "activating");
        assert_eq!(activation_end(3, 0), None, "deactivating is not the end yet");
        assert_eq!(activation_end(ACTIVATED, 1), Some(Ok(())));
        assert_eq!(
            activation_end(DEACTIVATED, 5),
            Some(Err(
                "ended deactivated: its IP configuration was invalid".to_owned()
            ))
        );
        assert_eq!(
            activation_end(DEACTIVATED, 42),
            Some(Err("ended deactivated: NetworkManager's reason 42".to_owned()))
        );
        let e = ActError::Activation {
            target: "connection u on ens6".into(),
            how: "did not end within 90 s".into(),
        };
        assert_eq!(e.kind(), "activation");
        assert!(e
            .to_string()
            .starts_with("the activation of connection u on ens6 did not end within 90 s"));
    }

    #[test]
    fn refusals_are_told_apart() {
        let fdo = |e: zbus::fdo::Error| zbus::Error::FDO(Box::new(e));
        assert!(is_denied(&fdo(
            zbus::fdo::Error::InteractiveAuthorizationRequired("Interactive authentication required.".into())
        )));
        assert!(is_denied(&fdo(zbus::fdo::Error::AccessDenied("no".into()))));
        assert!(!is_denied(&fdo(zbus::fdo::Error::UnknownObject("x".into()))));
        let denied = failure("RestartUnit", "u.service".into(), MANAGE_UNITS)(fdo(
            zbus::fdo::Error::InteractiveAuthorizationRequired("Interactive authentication required.".into()),
        ));
        assert_eq!(denied.kind(), "denied");
        assert!(
            denied
                .to_string()
                .contains("polkit org.freedesktop.systemd1.manage-units"),
            "{denied}"
        );
    }
}
