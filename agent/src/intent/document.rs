//! Intent stage, first step: bytes -> the partial Ignition configs they hold.
//!
//! Accepts JSON or YAML: one MachineConfig (rendered or not), a `kind: List` of
//! them, several YAML documents (`oc get mc -o yaml`), or a bare Ignition config
//! (spec 2.2 to 3.5); and network states: NodeNetworkConfigurationPolicies
//! (`spec.desiredState`, `spec.nodeSelector`) and plain nmstate documents. Only the fields the agent reads are modelled; everything
//! else passes unread. Errors name the place (JSON path, line) and never echo a
//! value from the input: a rendered config holds the pull secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// The partial Ignition config routewarden reads.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct Ignition {
    /// `ignition.version`.
    pub ignition: Option<IgnitionMeta>,
    /// `storage.files`.
    pub storage: Option<Storage>,
    /// `systemd.units`.
    pub systemd: Option<Systemd>,
}

/// The `ignition` section.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct IgnitionMeta {
    /// Spec version, e.g. `3.2.0`.
    pub version: Option<String>,
}

/// The `storage` section.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct Storage {
    /// Files to write.
    pub files: Option<Vec<File>>,
}

/// One `storage.files[]` entry.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct File {
    /// Absolute path on the node.
    pub path: String,
    /// Permission bits (decimal in JSON: 420 = 0644); Ignition's default is 0644.
    #[serde(deserialize_with = "mode")]
    pub mode: Option<u32>,
    /// The file's contents.
    pub contents: Option<Resource>,
    /// Fragments appended to the contents.
    pub append: Option<Vec<Resource>>,
    /// Ignition 2.x: the filesystem (`root`).
    pub filesystem: Option<String>,
}

/// An Ignition resource: a URL (here an RFC 2397 data URL) and its compression.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct Resource {
    /// `source`: the URL.
    pub source: Option<String>,
    /// `compression`: `gzip` or empty.
    pub compression: Option<String>,
}

/// The `systemd` section.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct Systemd {
    /// Units.
    pub units: Option<Vec<Unit>>,
}

/// One `systemd.units[]` entry.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct Unit {
    /// Unit name.
    pub name: String,
    /// `enabled` (3.x and 2.x).
    pub enabled: Option<bool>,
    /// `enable` (deprecated 2.x spelling).
    pub enable: Option<bool>,
    /// `mask`.
    pub mask: Option<bool>,
    /// Unit file contents.
    pub contents: Option<String>,
    /// Drop-ins.
    pub dropins: Option<Vec<Dropin>>,
}

impl Unit {
    /// Whether the config enables the unit (None: it says nothing).
    pub fn enabled(&self) -> Option<bool> {
        self.enabled.or(self.enable)
    }
}

/// One drop-in of a unit.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct Dropin {
    /// File name, e.g. `10-wait.conf`.
    pub name: String,
    /// Contents.
    pub contents: Option<String>,
}

/// One MachineConfig (or bare Ignition config) found in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `metadata.name`, when the document is a MachineConfig.
    pub name: Option<String>,
    /// Where it was in the input (`document 2`, `items[3]`).
    pub place: String,
    /// Its Ignition config.
    pub ignition: Ignition,
    /// Where it is, for tools that point at lines: the 0-based YAML document and
    /// the path of the Ignition config in it (`items[3].spec.config`; empty for a
    /// bare Ignition config).
    pub at: (usize, String),
    /// `metadata.labels["machineconfiguration.openshift.io/role"]`: its pool.
    pub role: Option<String>,
}

/// The label the MCO groups MachineConfigs into pools by.
pub const ROLE_LABEL: &str = "machineconfiguration.openshift.io/role";

/// A network state found in the input: a NodeNetworkConfigurationPolicy's
/// `desiredState` or a plain nmstate document.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkState {
    /// The policy's `metadata.name`; None for a plain nmstate document.
    pub policy: Option<String>,
    /// The policy's `spec.nodeSelector` (None: every node).
    pub node_selector: Option<BTreeMap<String, String>>,
    /// The policy's `spec.capture` names (values may refer to them).
    pub captures: Vec<String>,
    /// The state (`routes`, `route-rules`, `interfaces`...), unread.
    pub state: serde_json::Value,
    /// Where it is: the 0-based YAML document and the path of the state in it
    /// (`spec.desiredState`; empty for a plain document).
    pub at: (usize, String),
    /// Where it was in the input, in words (`document 2`).
    pub place: String,
}

impl NetworkState {
    /// How diagnostics and sources name it: `NodeNetworkConfigurationPolicy NAME
    /// desiredState`, `nmstate document`, `nmstate document 2`.
    pub fn origin(&self) -> String {
        match &self.policy {
            Some(name) => format!("NodeNetworkConfigurationPolicy {name} desiredState"),
            None if self.place.is_empty() => "nmstate document".to_owned(),
            None => format!("nmstate {}", self.place),
        }
    }

    /// Whether it applies to a node with these labels (every node when none are
    /// given or the policy selects none).
    pub fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        match (&self.node_selector, labels) {
            (Some(sel), Some(labels)) => sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
            _ => true,
        }
    }
}

/// Everything the input holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Documents {
    /// MachineConfigs and Ignition configs, in input order.
    pub configs: Vec<Config>,
    /// Network states, in input order.
    pub states: Vec<NetworkState>,
    /// Documents (and list items) that are neither.
    pub skipped: usize,
}

/// The input could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not valid JSON/YAML, or a modelled field has the wrong type.
    #[error("{place}: {message}")]
    Syntax {
        /// JSON path and/or line and column.
        place: String,
        /// What is wrong (without the offending value).
        message: String,
    },
    /// Valid, but holds no MachineConfig or Ignition config.
    #[error(
        "no MachineConfig, Ignition config or network state found (expected spec.config, items, an ignition section, a NodeNetworkConfigurationPolicy's spec.desiredState, or nmstate routes/route-rules/interfaces)"
    )]
    Empty,
}

impl DocumentError {
    /// Fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DocumentError::Syntax { .. } => "syntax",
            DocumentError::Empty => "empty",
        }
    }
}

/// A document as it may come: MachineConfig, List, or bare Ignition.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Document {
    kind: Option<String>,
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    items: Option<Vec<Document>>,
    ignition: Option<IgnitionMeta>,
    storage: Option<Storage>,
    systemd: Option<Systemd>,
    interfaces: Option<serde_json::Value>,
    routes: Option<serde_json::Value>,
    #[serde(rename = "route-rules")]
    route_rules: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    config: Option<Ignition>,
    desired_state: Option<serde_json::Value>,
    node_selector: Option<BTreeMap<String, String>>,
    capture: Option<BTreeMap<String, serde_json::Value>>,
}

const NNCP_KIND: &str = "NodeNetworkConfigurationPolicy";

/// Parse the input into the configs it holds, in input order.
pub fn parse(input: &[u8]) -> Result<Vec<Config>, DocumentError> {
    let docs = parse_all(input)?;
    if docs.configs.is_empty() {
        return Err(DocumentError::Empty);
    }
    Ok(docs.configs)
}

/// Parse the input into the configs and network states it holds; an input
/// that holds neither is [`DocumentError::Empty`].
pub fn parse_all(input: &[u8]) -> Result<Documents, DocumentError> {
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    let docs = match first {
        Some(b'{') | Some(b'[') => vec![parse_json(input)?],
        _ => parse_yaml(input)?,
    };
    let mut out = Documents::default();
    for (i, doc) in docs.into_iter().enumerate() {
        let place = if i == 0 {
            String::new()
        } else {
            format!("document {}", i + 1)
        };
        collect(doc, (i, String::new()), place, &mut out);
    }
    if out.configs.is_empty() && out.states.is_empty() {
        return Err(DocumentError::Empty);
    }
    Ok(out)
}

fn collect(doc: Document, at: (usize, String), place: String, out: &mut Documents) {
    if let Some(items) = doc.items {
        for (i, item) in items.into_iter().enumerate() {
            let inner = (at.0, join_path(&at.1, &format!("items[{i}]")));
            collect(item, inner, join_place(&place, &format!("items[{i}]")), out);
        }
        return;
    }
    let (name, labels) = doc.metadata.map(|m| (m.name, m.labels)).unwrap_or_default();
    let role = labels.and_then(|mut l| l.remove(ROLE_LABEL));
    let is_nncp = doc.kind.as_deref() == Some(NNCP_KIND);
    match doc.spec {
        Some(Spec {
            config: Some(ignition),
            ..
        }) => out.configs.push(Config {
            name,
            place,
            ignition,
            at: (at.0, join_path(&at.1, "spec.config")),
            role,
        }),
        Some(spec) if is_nncp => out.states.push(NetworkState {
            policy: name,
            node_selector: spec.node_selector,
            captures: spec.capture.map(|c| c.into_keys().collect()).unwrap_or_default(),
            state: spec.desired_state.unwrap_or_default(),
            at: (at.0, join_path(&at.1, "spec.desiredState")),
            place,
        }),
        _ if doc.kind.is_none() && (doc.ignition.is_some() || doc.systemd.is_some()) => {
            let ignition = Ignition {
                ignition: doc.ignition,
                storage: doc.storage,
                systemd: doc.systemd,
            };
            out.configs.push(Config {
                name: None,
                place,
                ignition,
                at,
                role: None,
            });
        }
        _ if doc.kind.is_none()
            && (doc.routes.is_some() || doc.route_rules.is_some() || doc.interfaces.is_some()) =>
        {
            let mut state = serde_json::Map::new();
            let parts = [
                ("interfaces", doc.interfaces),
                ("routes", doc.routes),
                ("route-rules", doc.route_rules),
            ];
            for (key, value) in parts {
                if let Some(v) = value {
                    state.insert(key.to_owned(), v);
                }
            }
            out.states.push(NetworkState {
                policy: None,
                node_selector: None,
                captures: Vec::new(),
                state: serde_json::Value::Object(state),
                at,
                place,
            });
        }
        _ => out.skipped += 1,
    }
}

fn join_path(outer: &str, inner: &str) -> String {
    if outer.is_empty() {
        inner.to_owned()
    } else {
        format!("{outer}.{inner}")
    }
}

fn join_place(outer: &str, inner: &str) -> String {
    if outer.is_empty() {
        inner.to_owned()
    } else {
        format!("{outer} {inner}")
    }
}

fn parse_json(input: &[u8]) -> Result<Document, DocumentError> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let doc: Document = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        let place = format!(
            "{} (line {} column {})",
            path_str(e.path()),
            inner.line(),
            inner.column()
        );
        DocumentError::Syntax {
            place,
            message: redact(&inner.to_string()),
        }
    })?;
    de.end().map_err(|e| DocumentError::Syntax {
        place: format!("line {} column {}", e.line(), e.column()),
        message: "trailing characters after the JSON document".to_owned(),
    })?;
    Ok(doc)
}

/// Deeper flow nesting than this is refused before libyaml sees it: its parser
/// slows down quadratically with the depth of `[[[...` (a hang, not a crash).
const MAX_FLOW_DEPTH: usize = 1000;

/// Counts brackets without parsing (quotes ignored), so text inside strings can
/// only make the count larger; real configs stay far below the limit.
fn flow_depth_exceeds(input: &[u8], limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    for b in input {
        match b {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line += 1,
            _ => {}
        }
        if depth > limit {
            return Some(line);
        }
    }
    None
}

fn parse_yaml(input: &[u8]) -> Result<Vec<Document>, DocumentError> {
    if let Some(line) = flow_depth_exceeds(input, MAX_FLOW_DEPTH) {
        return Err(DocumentError::Syntax {
            place: format!("line {line}"),
            message: format!("nested deeper than {MAX_FLOW_DEPTH} levels"),
        });
    }
    let merges = input.windows(2).any(|w| w == b"<<");
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_slice(input).enumerate() {
        if merges {
            docs.push(merged_document(de, i)?);
            continue;
        }
        let doc: Document = serde_path_to_error::deserialize(de).map_err(|e| {
            let loc = e
                .inner()
                .location()
                .map(|l| format!(" line {} column {}", l.line(), l.column()));
            let place = format!(
                "document {}: {}{}",
                i + 1,
                path_str(e.path()),
                loc.unwrap_or_default()
            );
            DocumentError::Syntax {
                place,
                message: redact(&e.inner().to_string()),
            }
        })?;
        docs.push(doc);
    }
    Ok(docs)
}

/// A document with YAML merge keys (`<<: *anchor`), merged as `oc` and
/// `kubectl` merge them (keys written in the mapping win) before it is read.
/// Errors then name the path, not the line.
fn merged_document(de: serde_norway::Deserializer<'_>, i: usize) -> Result<Document, DocumentError> {
    let place = |path: String| format!("document {}: {path}", i + 1);
    let syntax = |path: String, e: &serde_norway::Error| DocumentError::Syntax {
        place: place(path),
        message: redact(&e.to_string()),
    };
    let mut value = serde_norway::Value::deserialize(de).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!("line {} column {}", l.line(), l.column()));
        syntax(loc.unwrap_or_else(|| "top level".into()), &e)
    })?;
    value
        .apply_merge()
        .map_err(|e| syntax("a merge key (<<)".into(), &e))?;
    serde_path_to_error::deserialize(value).map_err(|e| syntax(path_str(e.path()), e.inner()))
}

fn path_str(path: &serde_path_to_error::Path) -> String {
    let p = path.to_string();
    if p == "." || p.is_empty() {
        "top level".to_owned()
    } else {
        p
    }
}

/// Drop whatever the parser quoted from the input: `invalid type: string "…",
/// expected u32` keeps only what was expected.
fn redact(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        let (what, _) = message.split_once(':').unwrap_or((message, ""));
        match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("{what}: expected {expected}"),
            None => what.to_owned(),
        }
    } else {
        message.to_owned()
    }
}

/// `mode`: an integer (decimal in JSON), or an octal string such as `"0644"`.
fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Int(u32),
        Text(String),
    }
    let m = Option::<Mode>::deserialize(d)?;
    let value = match m {
        None => return Ok(None),
        Some(Mode::Int(n)) => n,
        Some(Mode::Text(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .map_err(|_| serde::de::Error::custom("mode is not a number"))?,
    };
    if value > 0o7777 {
        return Err(serde::de::Error::custom("mode is larger than 07777"));
    }
    Ok(Some(value))
}
