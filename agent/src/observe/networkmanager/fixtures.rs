//! Test support: NetworkManager 1.42 replies recorded by
//! `tests/fixtures/networkmanager/capture.py` (one reply body a file: a comment
//! line naming the call, then the bytes in hex), decoded the way zbus decodes a
//! reply off the bus.

use zbus::wire::serialized::{Context, Data};
use zbus::wire::LE;

use super::proxy::{PropertyMap, SettingsMap};

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        /// The text of a fixture file.
        fn text(name: &str) -> &'static str {
            match name {
                $($name => include_str!(concat!("../../../tests/fixtures/networkmanager/", $name, ".hex")),)*
                other => panic!("no fixture {other}"),
            }
        }
    };
}

fixtures!(
    "device-ens5.applied",
    "device-ens5.props",
    "device-ens6.applied",
    "device-ens6.props",
    "device-ens6p.props",
    "device-ens7.applied",
    "device-ens7.props",
    "device-ens7p.props",
    "device-lo.applied",
    "device-lo.props",
    "profile-ens5.props",
    "profile-ens5.settings",
    "profile-lo.props",
    "profile-lo.settings",
    "profile-rw-all.props",
    "profile-rw-all.settings",
    "profile-rw-manual.props",
    "profile-rw-manual.settings",
    "profile-rw-nmstate.props",
    "profile-rw-nmstate.settings",
    "profile-rw-rules.props",
    "profile-rw-rules.settings",
);

/// The reply body's bytes.
fn bytes(name: &str) -> Vec<u8> {
    let mut lines = text(name).lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.ends_with("little-endian"),
        "{name}: recorded on a little-endian bus"
    );
    let hex = lines.next().unwrap_or_default();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}

fn decode<T>(name: &str) -> T
where
    T: for<'d> serde::Deserialize<'d> + zbus::wire::Type,
{
    let data = Data::new(bytes(name), Context::new(LE, 0));
    data.deserialize::<T>().expect("the recorded reply decodes").0
}

/// A `GetAll` reply.
pub(crate) fn properties(name: &str) -> PropertyMap {
    decode(name)
}

/// A `GetSettings` reply.
pub(crate) fn settings(name: &str) -> SettingsMap {
    decode(name)
}

/// A `GetAppliedConnection` reply's settings.
pub(crate) fn applied(name: &str) -> SettingsMap {
    decode::<(SettingsMap, u64)>(name).0
}

/// The whole recorded node as a view: every device (with its applied connection
/// when activated) and every profile.
pub(crate) fn recorded_view() -> crate::model::NmView {
    use super::convert::{connection_from_settings, device_from_properties, profile_from_reply};
    let devices = ["ens5", "ens6", "ens6p", "ens7", "ens7p", "lo"].map(|name| {
        let mut d = device_from_properties(name, &properties(&format!("device-{name}.props")))
            .expect("recorded device converts")
            .device;
        if d.state == crate::model::DeviceState::ACTIVATED {
            let settings = applied(&format!("device-{name}.applied"));
            d.applied = Some(
                connection_from_settings(name, &settings).expect("recorded applied connection converts"),
            );
        }
        d
    });
    let profiles = ["ens5", "lo", "rw-all", "rw-manual", "rw-nmstate", "rw-rules"].map(|name| {
        let settings = settings(&format!("profile-{name}.settings"));
        profile_from_reply(name, &settings, &properties(&format!("profile-{name}.props")))
            .expect("recorded profile converts")
    });
    crate::model::NmView {
        devices: devices.to_vec(),
        profiles: profiles.to_vec(),
        problems: Vec::new(),
    }
}
