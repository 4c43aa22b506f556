//! Observe stage, systemd side: when the node's current boot began. The manager's
//! `UserspaceTimestampMonotonic` is when systemd itself started (in a container,
//! when the container's systemd did), on CLOCK_MONOTONIC like every unit stamp;
//! one reading of both clocks places it on the wall clock as it reads now.

use super::error::UnitsError;
use super::proxy::{UnitPropertiesProxy, MANAGER_INTERFACE, MANAGER_PATH};
use super::Systemd;
use crate::model::Boot;

/// The manager's property read.
const BOOT_PROPERTY: &str = "UserspaceTimestampMonotonic";

impl Systemd {
    /// When the current boot began.
    pub async fn boot(&self) -> Result<Boot, UnitsError> {
        self.check_open()?;
        let site = || self.site("Get", format!("{MANAGER_INTERFACE}.{BOOT_PROPERTY}"));
        let props = UnitPropertiesProxy::builder(&self.conn)
            .path(MANAGER_PATH)
            .build()
            .await
            .map_err(|e| site().error(e))?;
        let value = props
            .get(MANAGER_INTERFACE, BOOT_PROPERTY)
            .await
            .map_err(|e| site().error(e))?;
        let monotonic = u64::try_from(&value).map_err(|_| UnitsError::Property {
            unit: "(the manager)".to_owned(),
            interface: MANAGER_INTERFACE,
            property: BOOT_PROPERTY,
            problem: format!("has unexpected type {}", value.value_signature()),
        })?;
        let (realtime_now, monotonic_now) = clocks_now();
        Ok(Boot::from_clocks(monotonic, realtime_now, monotonic_now))
    }
}

/// CLOCK_REALTIME and CLOCK_MONOTONIC now, in microseconds, read one after the other.
fn clocks_now() -> (u64, u64) {
    use nix::time::{clock_gettime, ClockId};
    let usec = |id| {
        clock_gettime(id)
            .map(|t| (t.tv_sec().max(0) as u64) * 1_000_000 + (t.tv_nsec().max(0) as u64) / 1_000)
            .unwrap_or(0)
    };
    (usec(ClockId::CLOCK_REALTIME), usec(ClockId::CLOCK_MONOTONIC))
}
