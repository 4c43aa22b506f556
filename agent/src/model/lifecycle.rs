//! The MachineConfig's life on the node: which file the intent was read from and
//! when it was written ([`ConfigFile`]), and when the node's current boot began
//! ([`Boot`]). Together they tell a config that is waiting for a reboot from one
//! the node has booted with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// The file the intent was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The node's path of the file (`/etc/mcd-currentconfig.json`), or the
    /// `--machineconfig` path as given.
    pub path: String,
    /// Its change time (ctime), microseconds since the Unix epoch: when it was
    /// last written or replaced.
    pub changed_usec: u64,
    /// The image pull spec in `currentimage` (on-cluster layering), when there is one.
    pub image: Option<String>,
    /// Read from the node's own files (the default lookup): its change time is when
    /// the MCO's daemon wrote it. A file named with `--machineconfig` may be any
    /// copy (`oc get mc -o yaml > mc.yaml`): its change time says nothing of the node.
    pub from_node: bool,
}

impl ConfigFile {
    /// The change time as RFC 3339 (UTC, seconds).
    pub fn written_at(&self) -> String {
        rfc3339(self.changed_usec)
    }
}

impl Serialize for ConfigFile {
    /// `{"path": ..., "image": ... | null, "written_at": "2025-01-01T00:00:00Z"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("image", &self.image)?;
        map.serialize_entry("written_at", &self.written_at())?;
        map.end()
    }
}

/// When the node's current boot began, as systemd (PID 1 of the node, also in a
/// container) recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    /// The manager's `UserspaceTimestampMonotonic`: microseconds of
    /// CLOCK_MONOTONIC, the clock of every unit timestamp.
    pub monotonic_usec: u64,
    /// The same instant in microseconds since the Unix epoch, by the clock as it
    /// reads now (not as it read at boot: see [`Boot::from_clocks`]).
    pub realtime_usec: u64,
}

impl Boot {
    /// The boot's wall-clock time from its monotonic stamp and one reading of
    /// both clocks (`uptime -s` does the same). The manager's own
    /// `UserspaceTimestamp` was taken with the clock as it was at boot, which is
    /// often stepped minutes or hours later (an RTC off until chrony's first
    /// step): compared with a file written after that step, it would place the
    /// boot before a config the MCO wrote just before rebooting.
    pub fn from_clocks(monotonic_usec: u64, now_realtime_usec: u64, now_monotonic_usec: u64) -> Boot {
        let since = now_monotonic_usec.saturating_sub(monotonic_usec);
        Boot {
            monotonic_usec,
            realtime_usec: now_realtime_usec.saturating_sub(since),
        }
    }

    /// A monotonic stamp of this boot (a unit's `...TimestampMonotonic`) as
    /// microseconds since the epoch; None for 0 (never).
    pub fn realtime_of(&self, monotonic_usec: u64) -> Option<u64> {
        (monotonic_usec > 0).then(|| {
            let offset = self.realtime_usec as i128 - self.monotonic_usec as i128;
            (monotonic_usec as i128 + offset).max(0) as u64
        })
    }

    /// When the boot began, RFC 3339 (UTC, seconds).
    pub fn at(&self) -> String {
        rfc3339(self.realtime_usec)
    }
}

/// Microseconds since the epoch as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(usec: u64) -> String {
    let t: SystemTime = UNIX_EPOCH + Duration::from_micros(usec);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_from_clocks_and_unit_stamps() {
        // Booted 100 s ago by the monotonic clock; the wall clock now reads 1_000_000 s.
        let boot = Boot::from_clocks(5_000_000, 1_000_000_000_000, 105_000_000);
        assert_eq!(boot.realtime_usec, 999_900_000_000);
        assert_eq!(boot.realtime_of(0), None, "0 means never");
        assert_eq!(boot.realtime_of(6_000_000), Some(999_901_000_000));
        assert_eq!(boot.at(), "1970-01-12T13:45:00Z");
    }

    #[test]
    fn file_serializes_with_rfc3339() {
        let f = ConfigFile {
            path: "/etc/mcd-currentconfig.json".into(),
            changed_usec: 1_700_000_000_500_000,
            image: None,
            from_node: true,
        };
        let v = serde_json::to_value(&f).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({"path": "/etc/mcd-currentconfig.json", "image": null, "written_at": "2023-11-14T22:13:20Z"})
        );
    }
}
