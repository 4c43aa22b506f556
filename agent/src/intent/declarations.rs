//! Intent stage, for tools that judge the declarations themselves (`lint`): the
//! intent of a set of configs together with the facts it does not carry: each
//! merged unit as systemd reads it (ordering, install), each file's mode, which
//! config wrote (or replaced) each unit and file, the addresses declared per
//! device, and the masked units that would declare routes.
//!
//! Pure, like the rest of the stage.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;

use crate::model::{IfName, Intent};

use super::build::{Builder, KEYFILE_DIRS};
use super::document::{Config, NetworkState};
use super::files::{self, DEFAULT_MODE};
use super::ini::{self, Flavour};
use super::units::{self, UnitDef};
use super::{merge, nmstate, Options};

/// One config's entry for a unit, drop-in or file, in merge order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Index of the config in the input order.
    pub config: usize,
    /// Index of the entry in that config's list (`systemd.units[i]`,
    /// `storage.files[i]`, the unit's `dropins[i]`).
    pub index: usize,
    /// Whether this entry sets the contents (a unit entry may only add drop-ins
    /// or change `enabled`).
    pub contents: bool,
}

/// A file as the merged config writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Path on the node.
    pub path: String,
    /// Mode (Ignition's 0644 when the config names none).
    pub mode: u32,
    /// Whether the config names the mode.
    pub mode_given: bool,
}

/// An address a config declares for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredAddress {
    /// The device.
    pub device: IfName,
    /// The address with its prefix length.
    pub net: IpNet,
}

/// The intent and the facts about its declarations.
#[derive(Debug, Clone, Default)]
pub struct Declarations {
    /// The intent, as `expected` shows it.
    pub intent: Intent,
    /// Every unit of the merged config that systemd would read.
    pub units: Vec<UnitDef>,
    /// Every file of the merged config.
    pub files: Vec<FileFacts>,
    /// Who wrote what: `file PATH`, `unit NAME`, `unit NAME drop-in FILE` ->
    /// writers in merge order (the last one wins).
    pub writers: BTreeMap<String, Vec<Written>>,
    /// Static addresses declared per device (keyfiles, nmstate files and states).
    pub addresses: Vec<DeclaredAddress>,
    /// Masked units whose commands declare routes or rules.
    pub masked_declaring: Vec<String>,
}

/// The declarations of `configs` (one pool) and `states`.
pub fn declarations(configs: &[Config], states: &[NetworkState], options: &Options) -> Declarations {
    let mut merged = merge(configs.to_vec());
    let units: Vec<UnitDef> = merged
        .units
        .values()
        .filter_map(|(origin, u)| units::read(u, origin).ok())
        .collect();
    let files: Vec<FileFacts> = merged
        .files
        .values()
        .map(|f| FileFacts {
            path: f.path.clone(),
            mode: f.mode.unwrap_or(DEFAULT_MODE),
            mode_given: f.mode.is_some(),
        })
        .collect();
    let mut addresses = file_addresses(&merged.files, options.short_host());
    let chosen: Vec<NetworkState> = states
        .iter()
        .filter(|s| s.selects(options.node_labels.as_ref()))
        .cloned()
        .collect();
    for s in &chosen {
        addresses.extend(nmstate_addresses(&s.state.to_string()));
    }
    let masked_declaring = masked_declaring(&merged, options);
    let writers = std::mem::take(&mut merged.writers);
    merged.states = chosen;
    Declarations {
        intent: Builder::new(merged, options).run(),
        units,
        files,
        writers,
        addresses,
        masked_declaring,
    }
}

/// The masked units that, unmasked, would declare routes or rules.
fn masked_declaring(merged: &super::Merged, options: &Options) -> Vec<String> {
    let mut out = Vec::new();
    for (name, (origin, unit)) in merged.units.iter().filter(|(_, (_, u))| u.mask == Some(true)) {
        let mut alone = super::Merged {
            files: merged.files.clone(),
            ..super::Merged::default()
        };
        let mut unmasked = unit.clone();
        unmasked.mask = None;
        alone.units.insert(name.clone(), (origin.clone(), unmasked));
        let intent = Builder::new(alone, options).run();
        let by_unit = |u: &Option<crate::model::UnitName>| u.as_ref().is_some_and(|u| u.as_str() == name);
        if intent.routes.iter().any(|r| by_unit(&r.source.unit))
            || intent.rules.iter().any(|r| by_unit(&r.source.unit))
        {
            out.push(name.clone());
        }
    }
    out
}

/// The addresses of the keyfiles and of the nmstate files applied on the node
/// (its per-host file too, when its name is known).
fn file_addresses(files: &files::FileMap, short_host: Option<&str>) -> Vec<DeclaredAddress> {
    let mut out = Vec::new();
    for f in files.values() {
        let keyfile = KEYFILE_DIRS.iter().any(|d| f.path.starts_with(d));
        let nmstate = nmstate::applies(&f.path, short_host) == nmstate::Applies::Yes;
        if !keyfile && !nmstate {
            continue;
        }
        let Ok(decoded) = files::decode(f) else { continue };
        if keyfile {
            out.extend(keyfile_addresses(&decoded.text));
        } else {
            out.extend(nmstate_addresses(&decoded.text));
        }
    }
    out
}

/// `[ipv4]`/`[ipv6]` `addressN=ADDR/LEN[,GATEWAY]` of a keyfile with an
/// `interface-name`.
pub fn keyfile_addresses(text: &str) -> Vec<DeclaredAddress> {
    let entries = ini::entries(text, Flavour::Keyfile);
    let device = entries
        .iter()
        .find(|e| e.section == "connection" && e.key == "interface-name")
        .and_then(|e| IfName::new(&e.value).ok());
    let Some(device) = device else { return Vec::new() };
    entries
        .iter()
        .filter(|e| matches!(e.section.as_str(), "ipv4" | "ipv6"))
        .filter(|e| {
            let digits = e
                .key
                .strip_prefix("addresses")
                .or_else(|| e.key.strip_prefix("address"));
            digits.is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()))
        })
        .filter_map(|e| e.value.split([',', ';']).next()?.trim().parse().ok())
        .map(|net| DeclaredAddress {
            device: device.clone(),
            net,
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct State {
    interfaces: Option<Vec<Interface>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Interface {
    name: Option<String>,
    ipv4: Option<IpConfig>,
    ipv6: Option<IpConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpConfig {
    address: Option<Vec<Address>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Address {
    ip: Option<String>,
    prefix_length: Option<u8>,
}

/// `interfaces[].ipv4|ipv6.address[]` of an nmstate state.
pub fn nmstate_addresses(text: &str) -> Vec<DeclaredAddress> {
    let Ok(state) = serde_norway::from_str::<State>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for iface in state.interfaces.unwrap_or_default() {
        let Some(device) = iface.name.as_deref().and_then(|n| IfName::new(n).ok()) else {
            continue;
        };
        for a in [iface.ipv4, iface.ipv6]
            .into_iter()
            .flatten()
            .flat_map(|c| c.address.unwrap_or_default())
        {
            let net =
                a.ip.as_deref()
                    .and_then(|ip| ip.parse().ok())
                    .and_then(|ip| IpNet::new(ip, a.prefix_length?).ok());
            if let Some(net) = net {
                out.push(DeclaredAddress {
                    device: device.clone(),
                    net,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_from_keyfiles_and_nmstate() {
        let kf = "[connection]\ninterface-name=ens6\n[ipv4]\naddress1=192.0.2.10/24,192.0.2.1\naddress2=198.51.100.5/25\n[ipv6]\naddresses1=fd00::5/64\n";
        let got: Vec<String> = keyfile_addresses(kf)
            .iter()
            .map(|a| format!("{} {}", a.device, a.net))
            .collect();
        assert_eq!(
            got,
            ["ens6 192.0.2.10/24", "ens6 198.51.100.5/25", "ens6 fd00::5/64"]
        );
        assert!(
            keyfile_addresses("[ipv4]\naddress1=192.0.2.10/24\n").is_empty(),
            "no device"
        );
        let ns = "interfaces:\n- name: ens7\n  ipv4:\n    address:\n    - ip: 10.1.0.4\n      prefix-length: 16\n  ipv6:\n    address:\n    - ip: bad\n      prefix-length: 64\n";
        let got: Vec<String> = nmstate_addresses(ns)
            .iter()
            .map(|a| format!("{} {}", a.device, a.net))
            .collect();
        assert_eq!(got, ["ens7 10.1.0.4/16"]);
        assert!(nmstate_addresses("interfaces: [").is_empty());
    }
}
