//! Observe stage, systemd side: the D-Bus calls made to systemd, and nothing more.

use zbus::proxy;
use zbus::OwnedObjectPath;

use super::props::PropertyMap;

/// systemd's well-known bus name.
pub(crate) const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";
/// The manager object.
pub(crate) const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
/// The manager interface.
pub(crate) const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";

/// One row of `ListUnitsByNames`: name, description, load state, active state, sub
/// state, followed unit, object path, job id, job type, job path.
pub(crate) type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// The object path of a `ListUnitsByNames` row.
pub(crate) fn row_path(row: &UnitRow) -> &OwnedObjectPath {
    &row.6
}

/// `org.freedesktop.systemd1.Manager`, the methods used here.
#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub(crate) trait Manager {
    /// One row per name, in order; unknown units come back as `not-found` rows.
    fn list_units_by_names(&self, names: &[&str]) -> zbus::Result<Vec<UnitRow>>;

    /// Ask systemd to send `PropertiesChanged` and the manager's signals to this
    /// connection (it sends none before).
    fn subscribe(&self) -> zbus::Result<()>;
}

/// `org.freedesktop.DBus.Properties` on a unit object (or the manager), the methods used here.
#[proxy(
    interface = "org.freedesktop.DBus.Properties",
    default_service = "org.freedesktop.systemd1",
    assume_defaults = false
)]
pub(crate) trait UnitProperties {
    /// Every property of one interface of the object.
    fn get_all(&self, interface_name: &str) -> zbus::Result<PropertyMap>;

    /// One property of one interface of the object.
    fn get(&self, interface_name: &str, property_name: &str) -> zbus::Result<zbus::OwnedVariant>;
}
