//! Observe stage, systemd side: the expected units' properties over D-Bus.
//!
//! [`Systemd`] holds one connection to the system bus (or any bus systemd is on)
//! and is reused for every read. [`Systemd::statuses`] asks systemd about exactly
//! the named units (`ListUnitsByNames`, then `GetAll` on each unit object) and
//! converts the property maps in a pure function ([`status_from_properties`]).
//! [`Systemd::watch`] subscribes to their change signals.
//!
//! How the daemon uses it:
//!
//! ```no_run
//! # use routewarden::observe::units::{Systemd, UnitsError};
//! # async fn run(names: Vec<routewarden::model::UnitName>) -> Result<(), UnitsError> {
//! let systemd = Systemd::connect(None).await?;
//! // Watch first, then read: a change between the two still arrives as an event.
//! let mut watch = systemd.watch(&names).await?;
//! let mut statuses = systemd.statuses(&names).await?;
//! while let Some(_events) = watch.next_batch().await {
//!     statuses = systemd.statuses(&names).await?;
//! }
//! // The stream ended: the bus is gone (`systemd.is_closed()`). Mark the units
//! // unknown, then connect again with backoff.
//! # drop(statuses); Ok(()) }
//! ```

mod boot;
mod error;
mod props;
mod proxy;

pub(crate) use proxy::ManagerProxy as SystemdManagerProxy;
mod watch;

use std::time::Duration;

use futures::future::try_join_all;
use zbus::{Connection, ObjectPath};

pub use error::UnitsError;
pub use props::{status_from_properties, PropertyMap, SERVICE_INTERFACE, UNIT_INTERFACE};
pub use watch::{UnitEvent, UnitWatch};

use crate::model::{UnitName, UnitStatus};
use error::CallSite;
use proxy::{row_path, ManagerProxy, UnitPropertiesProxy, UnitRow};

use super::bus::{self, BusError};
pub use super::bus::{bus_address, CALL_TIMEOUT, CONNECT_TIMEOUT, DEFAULT_SYSTEM_BUS};

/// A connection to the bus systemd is on, reused for every call and watch (clones
/// share it).
///
/// Create and use it inside one Tokio runtime: the connection's reader runs as a
/// task of the runtime it was created in.
#[derive(Debug, Clone)]
pub struct Systemd {
    conn: Connection,
    address: String,
}

impl Systemd {
    /// Connect to `address` (`unix:path=/proc/123/root/run/dbus/system_bus_socket`),
    /// else to `DBUS_SYSTEM_BUS_ADDRESS`, else to the system bus, giving up after
    /// [`CONNECT_TIMEOUT`].
    pub async fn connect(address: Option<&str>) -> Result<Systemd, UnitsError> {
        Systemd::connect_timeout(address, CONNECT_TIMEOUT).await
    }

    /// [`Systemd::connect`] with another timeout.
    pub async fn connect_timeout(address: Option<&str>, timeout: Duration) -> Result<Systemd, UnitsError> {
        let (conn, address) = bus::open(address, timeout).await?;
        Ok(Systemd { conn, address })
    }

    /// The bus address this connection went to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The bus connection, to share with the NetworkManager side.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// True once the connection is gone (the bus went away or the socket failed).
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Wait until the connection is gone.
    pub async fn closed(&self) {
        self.conn.closed().await
    }

    /// The state of exactly the named units, in the same order. A unit systemd does
    /// not know comes back with `load_state` `not-found`; `service` is filled for
    /// `.service` units that are `loaded`.
    pub async fn statuses(&self, units: &[UnitName]) -> Result<Vec<UnitStatus>, UnitsError> {
        self.check_open()?;
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.list_units(units).await?;
        let reads = units
            .iter()
            .zip(&rows)
            .map(|(name, row)| self.status(name, row_path(row)));
        try_join_all(reads).await
    }

    /// Subscribe to changes of the named units. Call it before reading them with
    /// [`Systemd::statuses`], and again after each reconnect. See [`UnitWatch`].
    pub async fn watch(&self, units: &[UnitName]) -> Result<UnitWatch, UnitsError> {
        self.check_open()?;
        let rows = self.list_units(units).await?;
        let canonical: Vec<String> = rows.iter().map(|r| row_path(r).to_string()).collect();
        let paths = watch::watched_paths(units, &canonical);
        let watch = watch::match_streams(&self.conn, paths).await;
        let watch = watch.map_err(|e| self.site("AddMatch", unit_list(units)).error(e))?;
        self.subscribe().await?;
        Ok(watch)
    }

    /// [`BusError::Closed`] once the connection is gone, rather than a failed call.
    fn check_open(&self) -> Result<(), UnitsError> {
        if self.conn.is_closed() {
            let address = self.address.clone();
            return Err(BusError::Closed { address }.into());
        }
        Ok(())
    }

    /// `Manager.Subscribe`; a connection that already subscribed stays subscribed.
    async fn subscribe(&self) -> Result<(), UnitsError> {
        let manager = self.manager().await?;
        match manager.subscribe().await {
            Err(e) if !error::is_already_subscribed(&e) => {
                Err(self.site("Subscribe", proxy::MANAGER_PATH.to_owned()).error(e))
            }
            _ => Ok(()),
        }
    }

    /// `ListUnitsByNames`: one row per name, in order, loading each unit.
    async fn list_units(&self, units: &[UnitName]) -> Result<Vec<UnitRow>, UnitsError> {
        let names: Vec<&str> = units.iter().map(UnitName::as_str).collect();
        let site = || self.site("ListUnitsByNames", unit_list(units));
        let manager = self.manager().await?;
        let rows = manager
            .list_units_by_names(&names)
            .await
            .map_err(|e| site().error(e))?;
        if rows.len() != units.len() {
            return Err(UnitsError::Reply {
                address: self.address.clone(),
                method: "ListUnitsByNames",
                target: unit_list(units),
                asked: units.len(),
                got: rows.len(),
            });
        }
        Ok(rows)
    }

    /// One unit's properties, from its object.
    async fn status(&self, name: &UnitName, path: &ObjectPath<'_>) -> Result<UnitStatus, UnitsError> {
        let unit = self.get_all(name, path, UNIT_INTERFACE).await?;
        let loaded = unit.get("LoadState").and_then(|v| <&str>::try_from(v).ok()) == Some("loaded");
        let service = if loaded && name.is_service() {
            Some(self.get_all(name, path, SERVICE_INTERFACE).await?)
        } else {
            None
        };
        status_from_properties(name, &unit, service.as_ref())
    }

    /// `Properties.GetAll(interface)` on a unit object.
    async fn get_all(
        &self,
        name: &UnitName,
        path: &ObjectPath<'_>,
        interface: &'static str,
    ) -> Result<PropertyMap, UnitsError> {
        let site = || self.site("GetAll", format!("{interface} of {name}"));
        let props = UnitPropertiesProxy::builder(&self.conn)
            .path(path.to_owned())
            .build()
            .await
            .map_err(|e| site().error(e))?;
        props.get_all(interface).await.map_err(|e| site().error(e))
    }

    /// A proxy for the manager object.
    async fn manager(&self) -> Result<ManagerProxy<'static>, UnitsError> {
        ManagerProxy::new(&self.conn)
            .await
            .map_err(|e| self.site("Manager", proxy::MANAGER_PATH.to_owned()).error(e))
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

/// `a.service, b.service`, for error messages.
fn unit_list(units: &[UnitName]) -> String {
    let names: Vec<&str> = units.iter().map(UnitName::as_str).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_lists_name_every_unit() {
        let units = [
            UnitName::new("a.service").expect("valid"),
            UnitName::new("b.target").expect("valid"),
        ];
        assert_eq!(unit_list(&units), "a.service, b.target");
    }
}
