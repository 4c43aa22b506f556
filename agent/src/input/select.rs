//! The edge of the intent stage, which file: a node's MachineConfig is the first of
//! [`NODE_CONFIGS`] that holds a config, in the order the Machine Config
//! Operator's daemon reads them (HyperShift nodes keep an empty `currentconfig`
//! and read `/etc/mcd-currentconfig.json`, else the config the Machine Config
//! Server provisioned them with). A node with none of them (plain Kubernetes) has
//! no MachineConfig: [`Loaded::Absent`], an empty intent, not an error. A file
//! that exists but cannot be read is an error and is not skipped: the next one
//! may be older.
//!
//! The intent carries the file it came from ([`ConfigFile`]): the node's path,
//! its change time (when the MCO's daemon last wrote it) and the layered image
//! named in `currentimage` beside `currentconfig`.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{parse, read, read_limited, InputError, InputPath};
use crate::intent::Options;
use crate::model::{ConfigFile, Diagnostic, Intent};
use crate::paths::{HostRoot, CURRENT_IMAGE, NODE_CONFIGS};

/// An image pull spec is short; `currentimage` is read up to this size.
const MAX_IMAGE_BYTES: u64 = 4096;

/// Where the MachineConfig is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Standard input (`-`).
    Stdin,
    /// A file named with `--machineconfig`: it must exist.
    File(PathBuf),
    /// The node's files under a host root, in the MCO's order.
    Node(HostRoot),
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Stdin => f.write_str("<stdin>"),
            Lookup::File(p) => write!(f, "{}", p.display()),
            Lookup::Node(host) => {
                let files: Vec<String> = NODE_CONFIGS
                    .iter()
                    .map(|p| host.resolve(p).display().to_string())
                    .collect();
                write!(f, "the first of {}", files.join(", "))
            }
        }
    }
}

impl Lookup {
    /// The files whose change may change the intent (`serve` watches them): the
    /// config files and `currentimage`.
    pub fn watched(&self) -> Vec<PathBuf> {
        match self {
            Lookup::Stdin => Vec::new(),
            Lookup::File(p) => std::iter::once(p.clone()).chain(self.image_file()).collect(),
            Lookup::Node(host) => NODE_CONFIGS
                .iter()
                .map(|p| host.resolve(p))
                .chain(self.image_file())
                .collect(),
        }
    }

    /// `currentimage`: the node's, or the one beside a `--machineconfig` file named
    /// `currentconfig`.
    fn image_file(&self) -> Option<PathBuf> {
        match self {
            Lookup::Node(host) => Some(host.resolve(CURRENT_IMAGE)),
            Lookup::File(p) if p.file_name().is_some_and(|n| n == "currentconfig") => {
                Some(p.with_file_name("currentimage"))
            }
            _ => None,
        }
    }
}

/// What the lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// The intent, with the file it came from in [`Intent::file`].
    Found(Box<Intent>),
    /// None of the node's files holds a config.
    Absent,
}

/// One file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBytes {
    /// Its contents.
    pub bytes: Vec<u8>,
    /// Its change time (ctime), microseconds since the epoch.
    pub changed_usec: u64,
}

/// Find, read and parse the MachineConfig.
pub fn read_intent(lookup: &Lookup, options: &Options) -> Result<Loaded, InputError> {
    let (shown, file) = match lookup {
        Lookup::Stdin => {
            let bytes = read(&InputPath::Stdin)?;
            return parse(&bytes, "<stdin>", options).map(|i| Loaded::Found(Box::new(i)));
        }
        Lookup::File(p) => {
            let shown = p.display().to_string();
            let file = read_file(p)?.ok_or_else(|| InputError::Io {
                path: shown.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
            (shown, file)
        }
        Lookup::Node(host) => match select(host, read_file)? {
            Some(found) => found,
            None => return Ok(Loaded::Absent),
        },
    };
    let opened = match lookup {
        Lookup::Node(host) => host.resolve(&shown).display().to_string(),
        _ => shown.clone(),
    };
    let mut intent = parse(&file.bytes, &opened, options)?;
    let image = lookup
        .image_file()
        .and_then(|p| read_image(&p, &mut intent.diagnostics));
    intent.file = Some(ConfigFile {
        path: shown,
        changed_usec: file.changed_usec,
        image,
        from_node: matches!(lookup, Lookup::Node(_)),
    });
    Ok(Loaded::Found(Box::new(intent)))
}

/// The first of the node's files under `host` that holds a config, with its node
/// path, read with `read` (None: the file does not exist). None when each is
/// missing or empty; an error from `read` ends the search.
pub fn select<F>(host: &HostRoot, mut read: F) -> Result<Option<(String, FileBytes)>, InputError>
where
    F: FnMut(&Path) -> Result<Option<FileBytes>, InputError>,
{
    for node_path in NODE_CONFIGS {
        let Some(file) = read(&host.resolve(node_path))? else {
            continue;
        };
        if holds_config(&file.bytes) {
            return Ok(Some((node_path.to_owned(), file)));
        }
    }
    Ok(None)
}

/// Anything but whitespace: HyperShift's `currentconfig` is empty.
fn holds_config(bytes: &[u8]) -> bool {
    bytes.iter().any(|b| !b.is_ascii_whitespace())
}

/// A file's bytes and change time; None when it does not exist (a dangling link
/// included).
fn read_file(path: &Path) -> Result<Option<FileBytes>, InputError> {
    let name = || path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(InputError::Io { path: name(), source }),
    };
    let meta = file
        .metadata()
        .map_err(|source| InputError::Io { path: name(), source })?;
    let changed_usec = u64::try_from(meta.ctime()).unwrap_or(0) * 1_000_000
        + u64::try_from(meta.ctime_nsec()).unwrap_or(0) / 1_000;
    let bytes = read_limited(file, name())?;
    Ok(Some(FileBytes { bytes, changed_usec }))
}

/// The pull spec in `currentimage`; None when the file is missing or empty. A file
/// that cannot be read, or does not hold one pull spec, is a warning.
fn read_image(path: &Path, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
    let origin = format!("file {}", path.display());
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_IMAGE_BYTES).read_to_string(&mut text));
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            diagnostics.push(Diagnostic::warning(
                origin,
                format!("cannot read the layered image: {e}"),
            ));
            return None;
        }
    }
    let spec = text.trim();
    if spec.is_empty() {
        return None;
    }
    if spec.len() as u64 >= MAX_IMAGE_BYTES || spec.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let why = "does not hold one image pull spec; the image label stays empty";
        diagnostics.push(Diagnostic::warning(origin, why));
        return None;
    }
    Some(spec.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::{CURRENT_CONFIG, MCD_CURRENT_CONFIG, MCS_CONTENT};

    const MC: &str = r#"{"kind": "MachineConfig", "metadata": {"name": "rendered-worker-x"}, "spec": {"config": {"ignition": {"version": "3.2.0"}}}}"#;

    /// A host root in a fresh temporary directory, removed on drop.
    struct Root(PathBuf);

    impl Root {
        fn new(tag: &str) -> Root {
            let dir = std::env::temp_dir().join(format!("rw-select-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("etc/machine-config-daemon")).expect("mkdir");
            Root(dir)
        }

        fn host(&self) -> HostRoot {
            HostRoot::new(&self.0)
        }

        fn write(&self, node_path: &str, text: &str) {
            std::fs::write(self.host().resolve(node_path), text).expect("write");
        }

        fn load(&self) -> Result<Loaded, InputError> {
            read_intent(&Lookup::Node(self.host()), &Options::default())
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn found(loaded: Result<Loaded, InputError>) -> Intent {
        match loaded {
            Ok(Loaded::Found(intent)) => *intent,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn currentconfig_first_when_both_hold_one() {
        let root = Root::new("both");
        root.write(CURRENT_CONFIG, MC);
        root.write(MCD_CURRENT_CONFIG, &MC.replace("worker-x", "worker-y"));
        let intent = found(root.load());
        assert_eq!(intent.machineconfig.as_deref(), Some("rendered-worker-x"));
        let file = intent.file.expect("file named");
        assert_eq!(file.path, CURRENT_CONFIG);
        assert!(
            file.changed_usec > 1_600_000_000_000_000,
            "a ctime: {}",
            file.changed_usec
        );
        assert_eq!(file.image, None);
    }

    #[test]
    fn an_empty_currentconfig_is_hypershift() {
        let root = Root::new("empty");
        root.write(CURRENT_CONFIG, " \n");
        root.write(MCD_CURRENT_CONFIG, &MC.replace("worker-x", "worker-y"));
        root.write(MCS_CONTENT, &MC.replace("worker-x", "worker-z"));
        let intent = found(root.load());
        assert_eq!(intent.machineconfig.as_deref(), Some("rendered-worker-y"));
        assert_eq!(intent.file.map(|f| f.path).as_deref(), Some(MCD_CURRENT_CONFIG));
        root.write(MCD_CURRENT_CONFIG, "");
        let intent = found(root.load());
        assert_eq!(intent.machineconfig.as_deref(), Some("rendered-worker-z"));
        assert_eq!(intent.file.map(|f| f.path).as_deref(), Some(MCS_CONTENT));
    }

    #[test]
    fn none_of_the_files_is_absent() {
        let root = Root::new("absent");
        assert_eq!(root.load().expect("absent is no error"), Loaded::Absent);
        root.write(CURRENT_CONFIG, "");
        assert_eq!(root.load().expect("empty is no config"), Loaded::Absent);
        std::fs::remove_dir_all(root.0.join("etc")).expect("rm etc");
        assert_eq!(root.load().expect("no /etc at all"), Loaded::Absent);
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it_and_not_skipped() {
        let root = Root::new("unreadable");
        // Root reads any file whatever its mode: a directory in its place cannot be read.
        std::fs::create_dir(root.host().resolve(CURRENT_CONFIG)).expect("mkdir");
        root.write(MCD_CURRENT_CONFIG, MC);
        let err = root.load().expect_err("a directory is not a config");
        assert!(
            err.to_string()
                .contains("etc/machine-config-daemon/currentconfig"),
            "{err}"
        );
        // The same decision with a permission error, as a non-root agent meets it.
        let denied = |p: &Path| -> Result<Option<FileBytes>, InputError> {
            Err(InputError::Io {
                path: p.display().to_string(),
                source: std::io::ErrorKind::PermissionDenied.into(),
            })
        };
        let err = select(&root.host(), denied).expect_err("permission denied");
        assert_eq!(err.kind(), "permission");
        assert!(err.to_string().contains("currentconfig"), "{err}");
    }

    #[test]
    fn a_broken_config_is_an_error_not_the_next_file() {
        let root = Root::new("broken");
        root.write(CURRENT_CONFIG, "{ not a machineconfig");
        root.write(MCD_CURRENT_CONFIG, MC);
        let err = root.load().expect_err("broken");
        assert!(err.to_string().contains("currentconfig"), "{err}");
    }

    #[test]
    fn the_layered_image_beside_currentconfig() {
        let root = Root::new("image");
        root.write(CURRENT_CONFIG, MC);
        root.write(CURRENT_IMAGE, "quay.io/example/os@sha256:abc\n");
        let intent = found(root.load());
        assert_eq!(
            intent.file.and_then(|f| f.image).as_deref(),
            Some("quay.io/example/os@sha256:abc")
        );
        root.write(CURRENT_IMAGE, "");
        assert_eq!(found(root.load()).file.and_then(|f| f.image), None, "not layered");
        root.write(CURRENT_IMAGE, "two\nlines");
        let intent = found(root.load());
        assert_eq!(intent.file.and_then(|f| f.image), None);
        assert!(
            intent.diagnostics[0].message.contains("one image pull spec"),
            "{:?}",
            intent.diagnostics
        );
    }

    #[test]
    fn a_named_file_must_exist() {
        let root = Root::new("named");
        let path = root.host().resolve(CURRENT_CONFIG);
        let err = read_intent(&Lookup::File(path.clone()), &Options::default()).expect_err("missing");
        assert_eq!(err.kind(), "not-found");
        root.write(CURRENT_CONFIG, MC);
        let intent = found(read_intent(&Lookup::File(path.clone()), &Options::default()));
        assert_eq!(intent.file.map(|f| f.path), Some(path.display().to_string()));
    }
}
