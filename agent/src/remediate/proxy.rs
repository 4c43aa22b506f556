//! Remediation, the D-Bus calls that change something, and nothing more. They
//! live here, not in `observe`, so that reading the node can never act on it.

use std::collections::HashMap;

use zbus::proxy;
use zbus::{ObjectPath, OwnedObjectPath, Variant};

/// `org.freedesktop.systemd1.Manager`, the methods and signal used to restart.
#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub(crate) trait SystemdManager {
    /// Queue a restart job of the unit; the job's object path.
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    /// Ask systemd to send its signals (`JobRemoved`) to this connection.
    fn subscribe(&self) -> zbus::Result<()>;

    /// A job ended: id, object path, unit, result (`done`, `failed`,
    /// `canceled`, `timeout`, `dependency`, `skipped`).
    #[zbus(signal)]
    fn job_removed(&self, id: u32, job: OwnedObjectPath, unit: String, result: String) -> zbus::Result<()>;
}

/// `org.freedesktop.NetworkManager`, the methods used to re-apply and activate.
#[proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager"
)]
pub(crate) trait NetworkManager {
    /// The device object of a network interface.
    #[zbus(no_autostart)]
    fn get_device_by_ip_iface(&self, iface: &str) -> zbus::Result<OwnedObjectPath>;

    /// Activate a profile on a device; the active connection's object path.
    #[zbus(no_autostart)]
    fn activate_connection(
        &self,
        connection: &ObjectPath<'_>,
        device: &ObjectPath<'_>,
        specific_object: &ObjectPath<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
}

/// `org.freedesktop.NetworkManager.Settings`, the lookup of a profile.
#[proxy(
    interface = "org.freedesktop.NetworkManager.Settings",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager/Settings"
)]
pub(crate) trait Settings {
    /// The profile object with this uuid.
    #[zbus(no_autostart)]
    fn get_connection_by_uuid(&self, uuid: &str) -> zbus::Result<OwnedObjectPath>;
}

/// `org.freedesktop.NetworkManager.Device`, the re-apply.
#[proxy(
    interface = "org.freedesktop.NetworkManager.Device",
    default_service = "org.freedesktop.NetworkManager",
    assume_defaults = false
)]
pub(crate) trait Device {
    /// Re-apply `connection` (empty: the device's profile as it is now) to the
    /// device, if it is still at `version_id` (0: any).
    #[zbus(no_autostart)]
    fn reapply(
        &self,
        connection: HashMap<&str, HashMap<&str, Variant<'_>>>,
        version_id: u64,
        flags: u32,
    ) -> zbus::Result<()>;
}

/// `org.freedesktop.NetworkManager.Connection.Active`, how an activation ends.
#[proxy(
    interface = "org.freedesktop.NetworkManager.Connection.Active",
    default_service = "org.freedesktop.NetworkManager",
    assume_defaults = false
)]
pub(crate) trait ActiveConnection {
    /// 0 unknown, 1 activating, 2 activated, 3 deactivating, 4 deactivated.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<u32>;

    /// The state changed: the new state and NetworkManager's reason
    /// (`StateChanged`; the name `state_changed` is the property's).
    #[zbus(signal, name = "StateChanged")]
    fn activation(&self, state: u32, reason: u32) -> zbus::Result<()>;
}
