//! Observe stage, NetworkManager side: its change signals as events.
//!
//! Two match rules: every signal NetworkManager sends under its object tree
//! (device `StateChanged`, `PropertiesChanged` of devices, IP configurations and
//! the manager, `Settings` `NewConnection`/`ConnectionRemoved`, a profile's
//! `Updated`/`Removed`, active connections' `StateChanged`), and `NameOwnerChanged`
//! for its bus name (it leaves the bus, it comes back). `nmcli device modify` and
//! `nmcli device reapply` change no device property: only the device's IP
//! configuration objects say something happened, so those count too.
//!
//! A task of its own drains both as they arrive and keeps the distinct events not
//! taken yet: a burst is one batch, and a slow read never holds up the connection
//! (zbus stops reading the socket, method replies included, while a stream's
//! queue is full).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use zbus::message::{Message, Type};
use zbus::{Connection, MatchRule, MessageStream, OwnedObjectPath, OwnedVariant};

use super::proxy::{NM_PATH, NM_SERVICE, SETTINGS_PATH};

/// Something that may have changed NetworkManager's view.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NmEvent {
    /// NetworkManager appeared on the bus (started, restarted): read everything.
    Started,
    /// NetworkManager left the bus (stopped, crashed).
    Gone,
    /// Active connections came or went: read every device.
    Devices,
    /// A device appeared or changed (state, management, active connection): read it.
    Device(String),
    /// A device disappeared.
    DeviceRemoved(String),
    /// An IP configuration object changed (routes added or removed, `nmcli device
    /// reapply`, `nmcli device modify`): read the device it belongs to.
    IpConfig(String),
    /// A profile appeared or changed: read it.
    Profile(String),
    /// A profile disappeared.
    ProfileRemoved(String),
}

/// Device properties whose change matters (the others change often and say nothing).
const DEVICE_PROPERTIES: [&str; 7] = [
    "Interface",
    "State",
    "StateReason",
    "Managed",
    "ActiveConnection",
    "Ip4Config",
    "Ip6Config",
];

/// What the draining task and [`NmWatch`] share.
#[derive(Debug, Default)]
struct Shared {
    events: Mutex<BTreeSet<NmEvent>>,
    closed: AtomicBool,
    notify: Notify,
}

/// NetworkManager's change signals, from
/// [`NetworkManager::watch`](super::NetworkManager::watch). Carries no state:
/// read again what an event names. Ends (`None`) only when the D-Bus connection
/// does; NetworkManager leaving the bus is [`NmEvent::Gone`], not an end.
#[derive(Debug)]
pub struct NmWatch {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl NmWatch {
    /// Wait for events and take every one received so far, each once.
    pub async fn next_batch(&mut self) -> Option<Vec<NmEvent>> {
        loop {
            let notified = self.shared.notify.notified();
            {
                let mut events = self.shared.events.lock().unwrap_or_else(|p| p.into_inner());
                if !events.is_empty() {
                    return Some(std::mem::take(&mut *events).into_iter().collect());
                }
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return None;
            }
            notified.await;
        }
    }
}

impl Drop for NmWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Register the match rules and start draining them. Read the view after this,
/// so a change between the two still arrives as an event.
pub(crate) async fn watch(conn: &Connection) -> zbus::Result<NmWatch> {
    let objects = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(NM_SERVICE)
        .path_namespace(NM_PATH)
        .build()?;
    let owner = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender("org.freedesktop.DBus")
        .interface("org.freedesktop.DBus")
        .member("NameOwnerChanged")
        .arg(0, NM_SERVICE)
        .build()?;
    let objects = MessageStream::for_match_rule(objects, conn, None).await?;
    let owner = MessageStream::for_match_rule(owner, conn, None).await?;
    let shared = Arc::new(Shared::default());
    let task = tokio::spawn(drain(futures::stream::select(objects, owner), shared.clone()));
    Ok(NmWatch { shared, task })
}

/// Classify each signal into the shared set until the connection ends.
async fn drain(mut signals: impl futures::Stream<Item = zbus::Result<Message>> + Unpin, shared: Arc<Shared>) {
    while let Some(msg) = signals.next().await {
        let Some(event) = msg.ok().as_ref().and_then(classify) else {
            continue;
        };
        let mut events = shared.events.lock().unwrap_or_else(|p| p.into_inner());
        events.insert(event);
        drop(events);
        shared.notify.notify_one();
    }
    shared.closed.store(true, Ordering::Release);
    shared.notify.notify_one();
}

/// The event a signal stands for, if any.
pub fn classify(msg: &Message) -> Option<NmEvent> {
    let header = msg.header();
    let path = header.path()?.as_str().to_owned();
    let member = header.member()?.as_str().to_owned();
    match (path.as_str(), member.as_str()) {
        (_, "NameOwnerChanged") => owner_changed(msg),
        (_, "PropertiesChanged") => properties_changed(msg, path),
        (NM_PATH, "DeviceAdded") => object_arg(msg).map(NmEvent::Device),
        (NM_PATH, "DeviceRemoved") => object_arg(msg).map(NmEvent::DeviceRemoved),
        (SETTINGS_PATH, "NewConnection") => object_arg(msg).map(NmEvent::Profile),
        (SETTINGS_PATH, "ConnectionRemoved") => object_arg(msg).map(NmEvent::ProfileRemoved),
        (p, "StateChanged") if under(p, "Devices") => Some(NmEvent::Device(path)),
        (p, "StateChanged") if under(p, "ActiveConnection") => Some(NmEvent::Devices),
        (p, "Updated") if under(p, "Settings") => Some(NmEvent::Profile(path)),
        (p, "Removed") if under(p, "Settings") => Some(NmEvent::ProfileRemoved(path)),
        _ => None,
    }
}

/// True for `/org/freedesktop/NetworkManager/<kind>/<something>`.
fn under(path: &str, kind: &str) -> bool {
    path.strip_prefix(NM_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_prefix(kind))
        .is_some_and(|rest| rest.starts_with('/'))
}

/// `NameOwnerChanged(name, old, new)`: an empty new owner means it left.
fn owner_changed(msg: &Message) -> Option<NmEvent> {
    let (name, _old, new): (String, String, String) = msg.body().deserialize().ok()?;
    if name != NM_SERVICE {
        return None;
    }
    Some(if new.is_empty() {
        NmEvent::Gone
    } else {
        NmEvent::Started
    })
}

/// `PropertiesChanged(interface, changed, invalidated)` on an object that matters.
fn properties_changed(msg: &Message, path: String) -> Option<NmEvent> {
    let (interface, changed, invalidated): (String, HashMap<String, OwnedVariant>, Vec<String>) =
        msg.body().deserialize().ok()?;
    let names = || changed.keys().chain(&invalidated);
    if path == NM_PATH {
        let devices = names().any(|n| n == "ActiveConnections" || n == "Devices");
        return devices.then_some(NmEvent::Devices);
    }
    if under(&path, "Devices") {
        let device = interface == "org.freedesktop.NetworkManager.Device"
            && names().any(|n| DEVICE_PROPERTIES.contains(&n.as_str()));
        return device.then_some(NmEvent::Device(path));
    }
    if under(&path, "IP4Config") || under(&path, "IP6Config") {
        return Some(NmEvent::IpConfig(path));
    }
    if under(&path, "Settings") {
        return Some(NmEvent::Profile(path));
    }
    None
}

/// The object path a signal carries as its only argument.
fn object_arg(msg: &Message) -> Option<String> {
    let path: OwnedObjectPath = msg.body().deserialize().ok()?;
    Some(path.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::ObjectPath;

    const DEVICE: &str = "/org/freedesktop/NetworkManager/Devices/2";

    fn signal<B>(path: &str, iface: &str, member: &str, body: &B) -> Message
    where
        B: serde::Serialize + zbus::wire::DynamicType,
    {
        Message::signal(path, iface, member)
            .build(body)
            .expect("a valid signal")
    }

    fn changed(path: &str, iface: &str, props: &[&str]) -> Message {
        let map: HashMap<&str, OwnedVariant> = props.iter().map(|p| (*p, OwnedVariant::from(1u32))).collect();
        let none: Vec<&str> = Vec::new();
        signal(
            path,
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            &(iface, map, none),
        )
    }

    #[test]
    fn device_signals() {
        let state = signal(
            DEVICE,
            "org.freedesktop.NetworkManager.Device",
            "StateChanged",
            &(30u32, 100u32, 39u32),
        );
        assert_eq!(classify(&state), Some(NmEvent::Device(DEVICE.into())));
        let managed = changed(
            DEVICE,
            "org.freedesktop.NetworkManager.Device",
            &["Managed", "Udi"],
        );
        assert_eq!(classify(&managed), Some(NmEvent::Device(DEVICE.into())));
        let noise = changed(DEVICE, "org.freedesktop.NetworkManager.Device", &["HwAddress"]);
        assert_eq!(classify(&noise), None);
        let stats = changed(
            DEVICE,
            "org.freedesktop.NetworkManager.Device.Statistics",
            &["TxBytes"],
        );
        assert_eq!(classify(&stats), None);
        let added = signal(
            NM_PATH,
            "org.freedesktop.NetworkManager",
            "DeviceAdded",
            &ObjectPath::from_static_str_unchecked(DEVICE),
        );
        assert_eq!(classify(&added), Some(NmEvent::Device(DEVICE.into())));
        let gone = signal(
            NM_PATH,
            "org.freedesktop.NetworkManager",
            "DeviceRemoved",
            &ObjectPath::from_static_str_unchecked(DEVICE),
        );
        assert_eq!(classify(&gone), Some(NmEvent::DeviceRemoved(DEVICE.into())));
    }

    #[test]
    fn routes_profiles_and_active_connections() {
        let ip4 = "/org/freedesktop/NetworkManager/IP4Config/7";
        let routes = changed(
            ip4,
            "org.freedesktop.NetworkManager.IP4Config",
            &["RouteData", "Routes"],
        );
        assert_eq!(classify(&routes), Some(NmEvent::IpConfig(ip4.into())));
        let profile = "/org/freedesktop/NetworkManager/Settings/3";
        let new = signal(
            SETTINGS_PATH,
            "org.freedesktop.NetworkManager.Settings",
            "NewConnection",
            &ObjectPath::from_static_str_unchecked(profile),
        );
        assert_eq!(classify(&new), Some(NmEvent::Profile(profile.into())));
        let updated = signal(
            profile,
            "org.freedesktop.NetworkManager.Settings.Connection",
            "Updated",
            &(),
        );
        assert_eq!(classify(&updated), Some(NmEvent::Profile(profile.into())));
        let removed = signal(
            SETTINGS_PATH,
            "org.freedesktop.NetworkManager.Settings",
            "ConnectionRemoved",
            &ObjectPath::from_static_str_unchecked(profile),
        );
        assert_eq!(classify(&removed), Some(NmEvent::ProfileRemoved(profile.into())));
        let active = signal(
            "/org/freedesktop/NetworkManager/ActiveConnection/5",
            "org.freedesktop.NetworkManager.Connection.Active",
            "StateChanged",
            &(2u32, 1u32),
        );
        assert_eq!(classify(&active), Some(NmEvent::Devices));
        let manager = changed(NM_PATH, "org.freedesktop.NetworkManager", &["ActiveConnections"]);
        assert_eq!(classify(&manager), Some(NmEvent::Devices));
        let connectivity = changed(NM_PATH, "org.freedesktop.NetworkManager", &["Connectivity"]);
        assert_eq!(classify(&connectivity), None);
        let settings = changed(
            SETTINGS_PATH,
            "org.freedesktop.NetworkManager.Settings",
            &["Hostname"],
        );
        assert_eq!(
            classify(&settings),
            None,
            "the Settings object itself is not a profile"
        );
    }

    #[test]
    fn leaving_and_coming_back() {
        let owner = |new: &str| {
            signal(
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NameOwnerChanged",
                &(NM_SERVICE, ":1.3", new),
            )
        };
        assert_eq!(classify(&owner("")), Some(NmEvent::Gone));
        assert_eq!(classify(&owner(":1.9")), Some(NmEvent::Started));
        let other = signal(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameOwnerChanged",
            &("org.example.Other", "", ":1.9"),
        );
        assert_eq!(classify(&other), None);
    }
}
