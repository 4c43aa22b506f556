//! Intent stage, first step: bytes -> the partial Ignition configs they hold.
//!
//! Accepts JSON or YAML: one MachineConfig (rendered or not), a `kind: List` of
//! them, several YAML documents (`oc get mc -o yaml`), or a bare Ignition config
//! (spec 2.2 to 3.5). Only the fields the agent reads are modelled; everything
//! else passes unread. Errors name the place (JSON path, line) and never echo a
//! value from the input: a rendered config holds the pull secret.

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
        "no MachineConfig or Ignition config found (expected spec.config, items, or an ignition section)"
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    config: Option<Ignition>,
}

/// Parse the input into the configs it holds, in input order.
pub fn parse(input: &[u8]) -> Result<Vec<Config>, DocumentError> {
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    let docs = match first {
        Some(b'{') | Some(b'[') => vec![parse_json(input)?],
        _ => parse_yaml(input)?,
    };
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let place = if i == 0 {
            String::new()
        } else {
            format!("document {}", i + 1)
        };
        collect(doc, place, &mut out);
    }
    if out.is_empty() {
        return Err(DocumentError::Empty);
    }
    Ok(out)
}

fn collect(doc: Document, place: String, out: &mut Vec<Config>) {
    if let Some(items) = doc.items {
        for (i, item) in items.into_iter().enumerate() {
            collect(item, join_place(&place, &format!("items[{i}]")), out);
        }
        return;
    }
    let name = doc.metadata.and_then(|m| m.name);
    if let Some(ignition) = doc.spec.and_then(|s| s.config) {
        out.push(Config {
            name,
            place,
            ignition,
        });
    } else if doc.kind.is_none() && (doc.ignition.is_some() || doc.systemd.is_some()) {
        let ignition = Ignition {
            ignition: doc.ignition,
            storage: doc.storage,
            systemd: doc.systemd,
        };
        out.push(Config {
            name: None,
            place,
            ignition,
        });
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
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_slice(input).enumerate() {
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
