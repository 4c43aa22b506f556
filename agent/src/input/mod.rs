//! The edge of the intent stage: read the MachineConfig file (or stdin) with a
//! size limit, and turn it into an [`Intent`]. The only I/O before the pure parser.
//! Which file a node's MachineConfig is in, and what else the node says about it
//! (change time, layered image), is [`select`]'s part.

mod select;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::intent::{self, DocumentError, Options};
use crate::model::Intent;

pub use select::{read_intent, select, FileBytes, Loaded, Lookup};

/// Rendered MachineConfigs fit in an etcd object (about 1.5 MiB); lists of them
/// from `oc get mc` are larger. Anything past this is refused, not read.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Where the MachineConfig comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPath {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl std::fmt::Display for InputPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputPath::Stdin => f.write_str("<stdin>"),
            InputPath::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The MachineConfig could not be read or understood at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Opening or reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Larger than [`MAX_INPUT_BYTES`].
    #[error("{path}: larger than {} MiB; not read", MAX_INPUT_BYTES / 1024 / 1024)]
    TooLarge {
        /// The file.
        path: String,
    },
    /// Not a MachineConfig.
    #[error("{path}: {source}")]
    Document {
        /// The file.
        path: String,
        /// What is wrong and where.
        source: DocumentError,
    },
}

impl InputError {
    /// Fixed label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            InputError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "not-found",
            InputError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                "permission"
            }
            InputError::Io { .. } => "io",
            InputError::TooLarge { .. } => "too-large",
            InputError::Document { source, .. } => source.kind(),
        }
    }
}

/// Read the bytes, refusing more than the limit.
pub fn read(path: &InputPath) -> Result<Vec<u8>, InputError> {
    let name = path.to_string();
    let reader: Box<dyn Read> = match path {
        InputPath::Stdin => Box::new(std::io::stdin().lock()),
        InputPath::File(p) => Box::new(std::fs::File::open(p).map_err(|source| InputError::Io {
            path: name.clone(),
            source,
        })?),
    };
    read_limited(reader, name)
}

/// Read at most [`MAX_INPUT_BYTES`] from `reader`; `name` names it in errors.
fn read_limited(reader: impl Read, name: String) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    if let Err(source) = reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes) {
        return Err(InputError::Io { path: name, source });
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge { path: name });
    }
    Ok(bytes)
}

/// Read and parse the MachineConfig.
pub fn load(path: &InputPath, options: &Options) -> Result<Intent, InputError> {
    let bytes = read(path)?;
    parse(&bytes, &path.to_string(), options)
}

/// Parse the bytes of the MachineConfig file `name`.
fn parse(bytes: &[u8], name: &str, options: &Options) -> Result<Intent, InputError> {
    intent::from_bytes(bytes, options).map_err(|source| InputError::Document {
        path: name.to_owned(),
        source,
    })
}

/// The node's name: the one given, else the kernel's hostname.
pub fn node_name(given: Option<&str>) -> Option<String> {
    if let Some(n) = given.filter(|n| !n.is_empty()) {
        return Some(n.to_owned());
    }
    let host = std::fs::read_to_string(Path::new("/proc/sys/kernel/hostname")).ok()?;
    Some(host.trim().to_owned()).filter(|h| !h.is_empty())
}
