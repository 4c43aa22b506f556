//! Intent stage: a MachineConfig (bytes) -> [`Intent`]: the routes the node must
//! have, the units that install them, and diagnostics about what could not be
//! read. Pure: no I/O here; the caller reads the file.
//!
//! Steps: [`document`] (JSON/YAML -> partial Ignition configs) -> merge (by name,
//! as the MCO does) -> [`files`] (data URLs) -> one module per declaration form
//! ([`nmcli`], [`iproute`], [`keyfile`], [`ifcfg`], [`nmstate`]) reached through
//! [`units`] and [`shell`] scripts -> [`Intent`].

pub mod document;
pub mod files;
pub mod ifcfg;
pub mod ini;
pub mod iproute;
pub mod keyfile;
pub mod networkmanager;
#[cfg(test)]
mod networkmanager_tests;
pub mod nmcli;
pub mod nmstate;
pub mod shell;
pub mod spec;
pub mod units;

mod build;
mod commands;

use std::collections::BTreeMap;

use crate::model::{Diagnostic, Intent};

pub use document::DocumentError;

/// Inputs that are not in the MachineConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The node's name (hostname), for `/etc/nmstate/openshift/<short-name>.yml`.
    pub node_name: Option<String>,
}

/// Derive the intent from the bytes of a MachineConfig file.
pub fn from_bytes(input: &[u8], options: &Options) -> Result<Intent, DocumentError> {
    let configs = document::parse(input)?;
    let merged = merge(configs);
    Ok(build::Builder::new(merged, options).run())
}

/// Configs merged into one, as the MCO merges MachineConfigs: by name order,
/// later files replace earlier ones, later unit fields override.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub(crate) name: Option<String>,
    pub(crate) files: BTreeMap<String, document::File>,
    pub(crate) units: BTreeMap<String, (String, document::Unit)>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

fn merge(mut configs: Vec<document::Config>) -> Merged {
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = configs.iter().filter_map(|c| c.name.as_deref()).collect();
    let mut m = Merged {
        name: (!names.is_empty()).then(|| names.join(",")),
        ..Merged::default()
    };
    for c in configs {
        merge_one(&mut m, c);
    }
    m
}

fn merge_one(m: &mut Merged, c: document::Config) {
    let at = |what: &str| match &c.name {
        Some(n) => format!("MachineConfig {n} {what}"),
        None if c.place.is_empty() => what.to_owned(),
        None => format!("{} {what}", c.place),
    };
    check_version(m, &c.ignition, &at("ignition.version"));
    let files = c
        .ignition
        .storage
        .as_ref()
        .and_then(|s| s.files.clone())
        .unwrap_or_default();
    for (i, f) in files.into_iter().enumerate() {
        if f.filesystem.as_deref().is_some_and(|fs| fs != "root") {
            let msg = "Ignition 2.x file on a filesystem other than root; not read";
            m.diagnostics
                .push(Diagnostic::warning(at(&format!("storage.files[{i}]")), msg));
            continue;
        }
        m.files.insert(f.path.clone(), f);
    }
    let units = c
        .ignition
        .systemd
        .as_ref()
        .and_then(|s| s.units.clone())
        .unwrap_or_default();
    for (i, u) in units.into_iter().enumerate() {
        let origin = at(&format!("systemd.units[{i}]"));
        match m.units.get_mut(&u.name) {
            Some((o, old)) => {
                *o = origin;
                override_unit(old, u);
            }
            None => {
                m.units.insert(u.name.clone(), (origin, u));
            }
        }
    }
}

fn override_unit(old: &mut document::Unit, new: document::Unit) {
    old.contents = new.contents.or(old.contents.take());
    old.enabled = new.enabled.or(old.enabled);
    old.enable = new.enable.or(old.enable);
    old.mask = new.mask.or(old.mask);
    let mut dropins: BTreeMap<String, document::Dropin> = BTreeMap::new();
    for d in old
        .dropins
        .take()
        .into_iter()
        .flatten()
        .chain(new.dropins.into_iter().flatten())
    {
        dropins.insert(d.name.clone(), d);
    }
    old.dropins = Some(dropins.into_values().collect());
}

fn check_version(m: &mut Merged, ign: &document::Ignition, origin: &str) {
    let version = ign.ignition.as_ref().and_then(|i| i.version.as_deref());
    let known = |v: &str| v.starts_with("2.") || v.starts_with("3.");
    match version {
        Some(v) if known(v) => {}
        Some(_) => m.diagnostics.push(Diagnostic::warning(
            origin,
            "unknown Ignition spec version; read as 3.x",
        )),
        None => {}
    }
}
