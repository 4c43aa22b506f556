//! Observe stage, NetworkManager side: the view kept current from events. Holds
//! every device and profile by object path; a batch of [`NmEvent`]s re-reads only
//! the objects it names (a device, the device an IP configuration belongs to, a
//! profile), so a signal costs one or two calls, never a full read.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use super::convert::DeviceProps;
use super::{NetworkManager, NmError, NmEvent};
use crate::model::{NmProfile, NmView};

/// The outcome of reading one object.
pub(crate) enum Fetched<T> {
    /// Read and understood.
    Got(T),
    /// The object no longer exists.
    Gone,
    /// Read, but not understood: the problem, named.
    Bad(String),
}

impl<T> Fetched<T> {
    /// Sort a read's result: a vanished object or a reply not understood is not
    /// a failure of the source; anything else is.
    pub(crate) fn from(result: Result<T, NmError>) -> Result<Fetched<T>, NmError> {
        match result {
            Ok(t) => Ok(Fetched::Got(t)),
            Err(e) if e.is_gone() => Ok(Fetched::Gone),
            Err(e) if e.is_refused() || matches!(e, NmError::Reply { .. }) => Ok(Fetched::Bad(e.to_string())),
            Err(e) => Err(e),
        }
    }
}

/// NetworkManager's devices and profiles by object path.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    devices: BTreeMap<String, DeviceProps>,
    profiles: BTreeMap<String, NmProfile>,
    /// What could not be read, by device path and by profile path: kept apart so
    /// that a reload of the devices forgets the problems of devices now gone.
    device_problems: BTreeMap<String, String>,
    profile_problems: BTreeMap<String, String>,
}

impl Tracker {
    /// Read every device and profile.
    pub async fn reload(&mut self, nm: &NetworkManager) -> Result<(), NmError> {
        *self = Tracker::default();
        self.reload_devices(nm).await?;
        let paths = nm.profile_paths().await?;
        let reads = paths
            .iter()
            .map(|p| async { Fetched::from(nm.read_profile(p).await) });
        for (path, fetched) in paths.iter().zip(try_join_all(reads).await?) {
            self.put_profile(path, fetched);
        }
        Ok(())
    }

    /// Re-read what a batch of events names, each device at most once (one
    /// activation signals the device's state, its IP configurations and the
    /// active connections together). [`NmEvent::Started`] and
    /// [`NmEvent::Gone`] are the caller's: it asks whether NetworkManager runs.
    pub async fn apply(&mut self, nm: &NetworkManager, events: &[NmEvent]) -> Result<(), NmError> {
        let mut read = BTreeSet::new();
        if events.contains(&NmEvent::Devices) {
            read = self.reload_devices(nm).await?;
        }
        for event in events {
            match event {
                NmEvent::Device(path) => {
                    if read.insert(path.clone()) {
                        self.refresh_device(nm, path).await?
                    }
                }
                NmEvent::IpConfig(config) => {
                    let owner = self.device_of_config(config);
                    if let Some(path) = owner.filter(|p| read.insert(p.clone())) {
                        self.refresh_device(nm, &path).await?;
                    }
                }
                NmEvent::DeviceRemoved(path) => {
                    self.devices.remove(path);
                    self.device_problems.remove(path);
                }
                NmEvent::Profile(path) => {
                    let fetched = Fetched::from(nm.read_profile(path).await)?;
                    self.put_profile(path, fetched);
                }
                NmEvent::ProfileRemoved(path) => {
                    self.profiles.remove(path);
                    self.profile_problems.remove(path);
                }
                NmEvent::Started | NmEvent::Gone | NmEvent::Devices => {}
            }
        }
        Ok(())
    }

    /// The view as it stands.
    pub fn view(&self) -> NmView {
        NmView {
            devices: self.devices.values().map(|d| d.device.clone()).collect(),
            profiles: self.profiles.values().cloned().collect(),
            problems: self
                .device_problems
                .values()
                .chain(self.profile_problems.values())
                .cloned()
                .collect(),
        }
    }

    /// Read every device; the paths read.
    async fn reload_devices(&mut self, nm: &NetworkManager) -> Result<BTreeSet<String>, NmError> {
        let paths = nm.device_paths().await?;
        let reads = paths
            .iter()
            .map(|p| async { Fetched::from(nm.read_device(p).await) });
        let fetched = try_join_all(reads).await?;
        self.replace_devices(&paths, fetched);
        Ok(paths.into_iter().collect())
    }

    /// The devices are these, and only these (their problems too).
    fn replace_devices(&mut self, paths: &[String], fetched: Vec<Fetched<DeviceProps>>) {
        self.devices.clear();
        self.device_problems.clear();
        for (path, f) in paths.iter().zip(fetched) {
            self.put_device(path, f);
        }
    }

    async fn refresh_device(&mut self, nm: &NetworkManager, path: &str) -> Result<(), NmError> {
        let fetched = Fetched::from(nm.read_device(path).await)?;
        self.put_device(path, fetched);
        Ok(())
    }

    fn device_of_config(&self, config: &str) -> Option<String> {
        self.devices
            .iter()
            .find(|(_, d)| d.ip_configs.iter().any(|c| c == config))
            .map(|(path, _)| path.clone())
    }

    fn put_device(&mut self, path: &str, fetched: Fetched<DeviceProps>) {
        put(&mut self.devices, &mut self.device_problems, path, fetched);
    }

    fn put_profile(&mut self, path: &str, fetched: Fetched<NmProfile>) {
        put(&mut self.profiles, &mut self.profile_problems, path, fetched);
    }
}

/// Keep what a read of the object at `path` found: the object, or its problem.
fn put<T>(
    objects: &mut BTreeMap<String, T>,
    problems: &mut BTreeMap<String, String>,
    path: &str,
    fetched: Fetched<T>,
) {
    objects.remove(path);
    problems.remove(path);
    match fetched {
        Fetched::Got(object) => {
            objects.insert(path.to_owned(), object);
        }
        Fetched::Bad(problem) => {
            problems.insert(path.to_owned(), problem);
        }
        Fetched::Gone => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_of_the_devices_forgets_the_problems_of_devices_gone() {
        let mut t = Tracker::default();
        let dev = |n: u32| format!("/org/freedesktop/NetworkManager/Devices/{n}");
        t.replace_devices(
            &[dev(1), dev(2)],
            vec![Fetched::Bad("d1 unreadable".into()), Fetched::Gone],
        );
        t.put_profile(
            "/org/freedesktop/NetworkManager/Settings/1",
            Fetched::Bad("p1 unreadable".into()),
        );
        assert_eq!(t.view().problems, ["d1 unreadable", "p1 unreadable"]);
        t.replace_devices(&[dev(2)], vec![Fetched::Gone]);
        assert_eq!(
            t.view().problems,
            ["p1 unreadable"],
            "device 1 is gone, so is its problem"
        );
    }
}
