//! Intent stage: a MachineConfig (bytes) -> [`Intent`]: the routes the node must
//! have, the units that install them, and diagnostics about what could not be
//! read. Pure: no I/O here; the caller reads the file.
//!
//! Steps: [`document`] (JSON/YAML -> partial Ignition configs and network states)
//! -> merge (by name, as the MCO does) -> [`files`] (data URLs) -> one module per
//! declaration form ([`nmcli`], [`iproute`], [`keyfile`], [`ifcfg`], [`nmstate`];
//! routing rules: [`iprule`], [`nmcli_rules`], [`nmstate_rules`], read by
//! [`rules`]) reached through [`units`] and [`shell`] scripts -> [`Intent`].
//! [`declarations`] adds, for `lint`, the facts the intent does not carry, and
//! [`lines`] where each YAML node is.

pub mod declarations;
pub mod document;
pub mod files;
pub mod ifcfg;
pub mod ini;
mod ipcmd;
pub mod iproute;
pub mod iprule;
pub mod keyfile;
pub mod lines;
pub mod networkmanager;
#[cfg(test)]
mod networkmanager_tests;
pub mod nmcli;
pub mod nmcli_rules;
pub mod nmstate;
pub mod nmstate_rules;
pub mod rules;
pub mod shell;
pub mod spec;
pub mod units;

mod build;
mod commands;
mod nncp;
mod rule_build;
mod sequence;

use std::collections::BTreeMap;

use crate::model::{Diagnostic, Intent};

pub use document::DocumentError;

/// Inputs that are not in the MachineConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The node's name (hostname), for `/etc/nmstate/openshift/<short-name>.yml`.
    pub node_name: Option<String>,
    /// The node's labels, for NodeNetworkConfigurationPolicies' `nodeSelector`
    /// (None: every policy applies).
    pub node_labels: Option<BTreeMap<String, String>>,
}

impl Options {
    /// The node's short host name (`worker-0` of `worker-0.example.com`), which
    /// names its per-host nmstate file.
    pub fn short_host(&self) -> Option<&str> {
        let name = self.node_name.as_deref()?;
        name.split('.').next()
    }
}

/// Derive the intent from the bytes of a MachineConfig file (or of
/// NodeNetworkConfigurationPolicies and nmstate documents).
pub fn from_bytes(input: &[u8], options: &Options) -> Result<Intent, DocumentError> {
    let docs = document::parse_all(input)?;
    Ok(from_documents(docs.configs, docs.states, options))
}

/// For tests: the intent of a MachineConfig that writes one file.
#[cfg(test)]
pub(crate) fn file_intent_for_tests(path: &str, mode: u32, text: &str) -> Intent {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(text);
    let mc = serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "file"},
        "spec": {"config": {"ignition": {"version": "3.2.0"}, "storage": {"files": [{
            "path": path, "mode": mode, "contents": {"source": format!("data:;base64,{data}")}}]}}}
    });
    from_bytes(mc.to_string().as_bytes(), &Options::default()).expect("the test MachineConfig parses")
}

/// Derive the intent from parsed configs (merged as the MCO merges them) and
/// network states (those whose node selector matches the options' labels).
pub fn from_documents(
    configs: Vec<document::Config>,
    states: Vec<document::NetworkState>,
    options: &Options,
) -> Intent {
    let mut merged = merge(configs);
    merged.states = states;
    build::Builder::new(merged, options).run()
}

/// Configs merged into one, as the MCO merges MachineConfigs: by name order,
/// later files replace earlier ones, later unit fields override.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub(crate) name: Option<String>,
    pub(crate) files: BTreeMap<String, document::File>,
    pub(crate) units: BTreeMap<String, (String, document::Unit)>,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) states: Vec<document::NetworkState>,
    pub(crate) writers: BTreeMap<String, Vec<declarations::Written>>,
}

impl Merged {
    fn written(&mut self, key: String, config: usize, index: usize, contents: bool) {
        let w = declarations::Written {
            config,
            index,
            contents,
        };
        self.writers.entry(key).or_default().push(w);
    }
}

fn merge(configs: Vec<document::Config>) -> Merged {
    let mut configs: Vec<(usize, document::Config)> = configs.into_iter().enumerate().collect();
    configs.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let names: Vec<&str> = configs.iter().filter_map(|(_, c)| c.name.as_deref()).collect();
    let mut m = Merged {
        name: (!names.is_empty()).then(|| names.join(",")),
        ..Merged::default()
    };
    for (n, c) in configs {
        merge_one(&mut m, n, c);
    }
    m
}

fn merge_one(m: &mut Merged, n: usize, c: document::Config) {
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
        m.written(format!("file {}", f.path), n, i, true);
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
        m.written(format!("unit {}", u.name), n, i, u.contents.is_some());
        for (j, d) in u.dropins.iter().flatten().enumerate() {
            m.written(format!("unit {} drop-in {}", u.name, d.name), n, j, true);
        }
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
