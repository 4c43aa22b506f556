//! Observe stage, NetworkManager side: its devices and connection profiles over
//! D-Bus, read as an unprivileged caller may (no secrets are asked for).
//!
//! - [`NetworkManager`]: one connection to the system bus, reused for every call
//!   (or the connection the systemd side already has, [`NetworkManager::on`]).
//! - `proxy`: the few calls made (`GetDevices`, `GetAll`, `GetAppliedConnection`,
//!   `ListConnections`, `GetSettings`), none of which may start NetworkManager.
//! - [`device_from_properties`], [`connection_from_settings`],
//!   [`profile_from_reply`]: the pure conversion of replies to the model's types.
//! - [`NmWatch`]: its change signals and its comings and goings on the bus, as
//!   [`NmEvent`]s; [`Tracker`]: the view kept current from them.
//!
//! ```no_run
//! # use routewarden::observe::networkmanager::{NetworkManager, NmError, NmEvent, Tracker};
//! # async fn run() -> Result<(), NmError> {
//! let nm = NetworkManager::connect(None).await?;
//! // Watch first, then read: a change between the two still arrives as an event.
//! let mut watch = nm.watch().await?;
//! let mut tracker = Tracker::default();
//! tracker.reload(&nm).await?;
//! while let Some(events) = watch.next_batch().await {
//!     tracker.apply(&nm, &events).await?;
//!     let _view = tracker.view();
//! }
//! // The stream ended: the bus connection is gone. Connect again with backoff.
//! # Ok(()) }
//! ```

mod convert;
mod error;
mod proxy;
mod tracker;
mod watch;

#[cfg(test)]
mod convert_tests;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod rule_convert_tests;

use zbus::{Connection, OwnedObjectPath};

pub use convert::{connection_from_settings, device_from_properties, profile_from_reply, DeviceProps};
pub use error::NmError;
pub use proxy::{PropertyMap, SettingsMap};
pub use tracker::Tracker;
pub use watch::{classify, NmEvent, NmWatch};

use crate::model::{DeviceState, NmProfile, NmView};
use crate::observe::bus::{self, BusError, CALL_TIMEOUT, CONNECT_TIMEOUT};
use error::CallSite;
use proxy::{
    DeviceProxy, ManagerProxy, PropertiesProxy, SettingsConnectionProxy, SettingsProxy, CONNECTION_INTERFACE,
    DEVICE_INTERFACE, NM_SERVICE,
};

/// A connection to the bus NetworkManager is on, reused for every call and watch.
///
/// Create and use it inside one Tokio runtime.
#[derive(Debug, Clone)]
pub struct NetworkManager {
    conn: Connection,
    address: String,
}

impl NetworkManager {
    /// Connect to `address`, else to `DBUS_SYSTEM_BUS_ADDRESS`, else to the system
    /// bus (the systemd side's rules), giving up after [`CONNECT_TIMEOUT`].
    pub async fn connect(address: Option<&str>) -> Result<NetworkManager, NmError> {
        let (conn, address) = bus::open(address, CONNECT_TIMEOUT).await?;
        Ok(NetworkManager { conn, address })
    }

    /// Use a bus connection made already (the one the systemd side uses).
    pub fn on(conn: Connection, address: &str) -> NetworkManager {
        NetworkManager {
            conn,
            address: address.to_owned(),
        }
    }

    /// The bus address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether NetworkManager is on the bus now.
    pub async fn running(&self) -> Result<bool, NmError> {
        self.check_open()?;
        let site = || self.site("NameHasOwner", NM_SERVICE.to_owned());
        let dbus = zbus::fdo::DBusProxy::new(&self.conn)
            .await
            .map_err(|e| site().error(e))?;
        let name = zbus::names::BusName::try_from(NM_SERVICE).map_err(|e| site().error(e))?;
        dbus.name_has_owner(name)
            .await
            .map_err(|e| site().error(e.into()))
    }

    /// Whether NetworkManager is installed, by systemd on the same bus: false
    /// only when systemd knows no `NetworkManager.service` (a node that has no
    /// NetworkManager: the source is absent, not down); true when it does, or
    /// when systemd cannot say.
    pub async fn installed(&self) -> bool {
        let Ok(systemd) = crate::observe::units::SystemdManagerProxy::new(&self.conn).await else {
            return true;
        };
        match systemd.list_units_by_names(&["NetworkManager.service"]).await {
            Ok(rows) => rows.first().is_none_or(|row| row.2 != "not-found"),
            Err(_) => true,
        }
    }

    /// Subscribe to NetworkManager's changes. Call it before reading, and again
    /// after each reconnect. See [`NmWatch`].
    pub async fn watch(&self) -> Result<NmWatch, NmError> {
        self.check_open()?;
        watch::watch(&self.conn)
            .await
            .map_err(|e| self.site("AddMatch", proxy::NM_PATH.to_owned()).error(e))
    }

    /// Read every device and profile once.
    pub async fn view(&self) -> Result<NmView, NmError> {
        let mut tracker = Tracker::default();
        tracker.reload(self).await?;
        Ok(tracker.view())
    }

    /// `GetDevices`.
    pub(crate) async fn device_paths(&self) -> Result<Vec<String>, NmError> {
        self.check_open()?;
        let site = || self.site("GetDevices", proxy::NM_PATH.to_owned());
        let manager = ManagerProxy::new(&self.conn).await.map_err(|e| site().error(e))?;
        let paths = manager.get_devices().await.map_err(|e| site().error(e))?;
        Ok(strings(paths))
    }

    /// `ListConnections`.
    pub(crate) async fn profile_paths(&self) -> Result<Vec<String>, NmError> {
        self.check_open()?;
        let site = || self.site("ListConnections", proxy::SETTINGS_PATH.to_owned());
        let settings = SettingsProxy::new(&self.conn)
            .await
            .map_err(|e| site().error(e))?;
        let paths = settings.list_connections().await.map_err(|e| site().error(e))?;
        Ok(strings(paths))
    }

    /// One device: its properties and, when it is activated, its applied connection.
    pub(crate) async fn read_device(&self, path: &str) -> Result<DeviceProps, NmError> {
        let props = self.get_all(path, DEVICE_INTERFACE).await?;
        let mut device = device_from_properties(path, &props)?;
        if device.device.state == DeviceState::ACTIVATED {
            let site = || self.site("GetAppliedConnection", path.to_owned());
            let proxy = DeviceProxy::builder(&self.conn)
                .path(path.to_owned())
                .build()
                .await
                .map_err(|e| site().error(e))?;
            match proxy.get_applied_connection(0).await.map_err(|e| site().error(e)) {
                Ok((settings, _version)) => {
                    let applied = connection_from_settings(&format!("{path} applied"), &settings)?;
                    device.device.applied = Some(applied);
                }
                Err(e) if e.is_not_active() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(device)
    }

    /// One profile: its settings, file and flags.
    pub(crate) async fn read_profile(&self, path: &str) -> Result<NmProfile, NmError> {
        let site = || self.site("GetSettings", path.to_owned());
        let proxy = SettingsConnectionProxy::builder(&self.conn)
            .path(path.to_owned())
            .build()
            .await
            .map_err(|e| site().error(e))?;
        let settings = proxy.get_settings().await.map_err(|e| site().error(e))?;
        let props = self.get_all(path, CONNECTION_INTERFACE).await?;
        profile_from_reply(path, &settings, &props)
    }

    /// `Properties.GetAll(interface)` on an object.
    async fn get_all(&self, path: &str, interface: &'static str) -> Result<PropertyMap, NmError> {
        self.check_open()?;
        let site = || self.site("GetAll", format!("{interface} of {path}"));
        let props = PropertiesProxy::builder(&self.conn)
            .path(path.to_owned())
            .build()
            .await
            .map_err(|e| site().error(e))?;
        props.get_all(interface).await.map_err(|e| site().error(e))
    }

    /// [`BusError::Closed`] once the connection is gone, rather than a failed call.
    fn check_open(&self) -> Result<(), NmError> {
        if self.conn.is_closed() {
            let address = self.address.clone();
            return Err(BusError::Closed { address }.into());
        }
        Ok(())
    }

    /// Where a call happens, for its error.
    fn site(&self, method: &'static str, target: String) -> CallSite<'_> {
        CallSite {
            address: &self.address,
            method,
            target,
            timeout: CALL_TIMEOUT,
            closed: self.conn.is_closed(),
        }
    }
}

fn strings(paths: Vec<OwnedObjectPath>) -> Vec<String> {
    paths.into_iter().map(|p| p.as_str().to_owned()).collect()
}
