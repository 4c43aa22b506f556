//! `lint`'s inputs: files, directories (recursive: `*.yaml`, `*.yml`, `*.json`, in
//! name order) and stdin (`-`, e.g. `kustomize build` output), each read with the
//! same size limit as a MachineConfig, parsed into documents and indexed by line.

use std::path::{Path, PathBuf};

use crate::input::{self, InputPath};
use crate::intent::document::{self, Documents};
use crate::intent::lines::Lines;
use crate::intent::DocumentError;

/// One input file, parsed.
#[derive(Debug, Clone)]
pub struct Input {
    /// The path as given (or found under a directory); `-` for stdin.
    pub name: String,
    /// What it holds.
    pub docs: Documents,
    /// Where each node is.
    pub lines: Lines,
}

/// An input that cannot be read (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading failed or the file is too large.
    #[error(transparent)]
    Read(#[from] input::InputError),
    /// A directory could not be listed.
    #[error("{path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid JSON/YAML.
    #[error("{path}: {source}")]
    Syntax {
        /// The file.
        path: String,
        /// Where and what.
        source: DocumentError,
    },
}

impl InputError {
    /// Fixed label.
    pub fn kind(&self) -> &'static str {
        match self {
            InputError::Read(e) => e.kind(),
            InputError::Dir { .. } => "directory",
            InputError::Syntax { .. } => "syntax",
        }
    }
}

/// The files named by `args` (`-` for stdin; none: stdin).
pub fn expand(args: &[String]) -> Result<Vec<InputPath>, InputError> {
    if args.is_empty() {
        return Ok(vec![InputPath::Stdin]);
    }
    let mut out = Vec::new();
    for a in args {
        if a == "-" {
            out.push(InputPath::Stdin);
        } else if Path::new(a).is_dir() {
            walk(Path::new(a), &mut out)?;
        } else {
            out.push(InputPath::File(PathBuf::from(a)));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<InputPath>) -> Result<(), InputError> {
    let err = |source| InputError::Dir {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(InputPath::File(p));
        }
    }
    Ok(())
}

/// Read and parse one input. A file that holds no MachineConfig, Ignition
/// config or network state is kept, with its document counted as skipped.
pub fn read(path: &InputPath) -> Result<Input, InputError> {
    let bytes = input::read(path)?;
    let name = match path {
        InputPath::Stdin => "-".to_owned(),
        InputPath::File(p) => p.display().to_string(),
    };
    let docs = match document::parse_all(&bytes) {
        Ok(d) => d,
        Err(DocumentError::Empty) => Documents {
            skipped: 1,
            ..Documents::default()
        },
        Err(source) => return Err(InputError::Syntax { path: name, source }),
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(Input {
        name,
        lines: Lines::index(&text),
        docs,
    })
}
