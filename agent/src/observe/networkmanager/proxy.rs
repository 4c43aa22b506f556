//! Observe stage, NetworkManager side: the D-Bus calls made to NetworkManager,
//! and nothing more. Every call carries NO_AUTO_START: asking must never start a
//! NetworkManager someone stopped (D-Bus activation).

use std::collections::HashMap;

use zbus::proxy;
use zbus::{OwnedObjectPath, OwnedVariant};

/// NetworkManager's well-known bus name.
pub(crate) const NM_SERVICE: &str = "org.freedesktop.NetworkManager";
/// Where every NetworkManager object lives.
pub(crate) const NM_PATH: &str = "/org/freedesktop/NetworkManager";
/// The settings (profiles) object.
pub(crate) const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
/// The interface of device objects.
pub(crate) const DEVICE_INTERFACE: &str = "org.freedesktop.NetworkManager.Device";
/// The interface of profile objects.
pub(crate) const CONNECTION_INTERFACE: &str = "org.freedesktop.NetworkManager.Settings.Connection";

/// A connection's settings: setting name (`connection`, `ipv4`...) to property map.
pub type SettingsMap = HashMap<String, HashMap<String, OwnedVariant>>;
/// The answer of `org.freedesktop.DBus.Properties.GetAll`.
pub type PropertyMap = HashMap<String, OwnedVariant>;

/// `org.freedesktop.NetworkManager`, the method used here.
#[proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager"
)]
pub(crate) trait Manager {
    /// Every device NetworkManager knows (realized ones).
    #[zbus(no_autostart)]
    fn get_devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

/// `org.freedesktop.NetworkManager.Settings`, the method used here.
#[proxy(
    interface = "org.freedesktop.NetworkManager.Settings",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager/Settings"
)]
pub(crate) trait Settings {
    /// Every profile NetworkManager has loaded.
    #[zbus(no_autostart)]
    fn list_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

/// `org.freedesktop.NetworkManager.Settings.Connection` on a profile object.
#[proxy(
    interface = "org.freedesktop.NetworkManager.Settings.Connection",
    default_service = "org.freedesktop.NetworkManager",
    assume_defaults = false
)]
pub(crate) trait SettingsConnection {
    /// The profile's settings, secrets left out.
    #[zbus(no_autostart)]
    fn get_settings(&self) -> zbus::Result<SettingsMap>;
}

/// `org.freedesktop.NetworkManager.Device` on a device object.
#[proxy(
    interface = "org.freedesktop.NetworkManager.Device",
    default_service = "org.freedesktop.NetworkManager",
    assume_defaults = false
)]
pub(crate) trait Device {
    /// The settings the device runs with now, and their version id.
    #[zbus(no_autostart)]
    fn get_applied_connection(&self, flags: u32) -> zbus::Result<(SettingsMap, u64)>;
}

/// `org.freedesktop.DBus.Properties` on a NetworkManager object, the method used here.
#[proxy(
    interface = "org.freedesktop.DBus.Properties",
    default_service = "org.freedesktop.NetworkManager",
    assume_defaults = false
)]
pub(crate) trait Properties {
    /// Every property of one interface of the object.
    #[zbus(no_autostart)]
    fn get_all(&self, interface_name: &str) -> zbus::Result<PropertyMap>;
}
