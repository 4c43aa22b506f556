//! Daemon, intent side: notice when a MachineConfig file may have changed. Writers
//! replace files rather than rewrite them (the machine-config-daemon writes a
//! temporary file and renames it; a ConfigMap volume swaps its `..data` link), so
//! directories are watched with inotify for names, never the files themselves.
//!
//! Each watched path is followed the way `open` follows it ([`watch_points`]):
//! every symbolic link on the way (`currentconfig -> ..data/currentconfig`, `..data
//! -> ..2024_01_01_xx`) is watched in its directory, and so is the file it ends
//! on; a component that does not exist yet is watched in the directory that would
//! hold it. A change to any of them may point the path elsewhere: the caller makes
//! a new watch after each change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use futures::StreamExt;
use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask};

/// Links followed on one path before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// A watch on the directories that decide what a set of paths open.
pub struct FileWatch {
    stream: EventStream<Vec<u8>>,
    names: HashMap<WatchDescriptor, BTreeSet<OsString>>,
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatch").field("names", &self.names).finish()
    }
}

impl FileWatch {
    /// Watch what `files` open now (see the module doc).
    pub fn new(files: &[PathBuf]) -> io::Result<FileWatch> {
        let mut dirs: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
        for file in files {
            for (dir, name) in watch_points(file) {
                dirs.entry(dir).or_default().insert(name);
            }
        }
        let inotify = Inotify::init().map_err(|e| io::Error::new(e.kind(), format!("inotify: {e}")))?;
        let mask = WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::ATTRIB
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        let mut names = HashMap::new();
        for (dir, wanted) in dirs {
            let wd = inotify
                .watches()
                .add(&dir, mask)
                .map_err(|e| with_path(&dir, e))?;
            names.insert(wd, wanted);
        }
        let stream = inotify
            .into_event_stream(vec![0u8; 4096])
            .map_err(|e| io::Error::new(e.kind(), format!("inotify: {e}")))?;
        Ok(FileWatch { stream, names })
    }

    /// Wait until a watched name changed. `Err` when the watch broke (a watched
    /// directory went away); either way the caller makes a new watch.
    pub async fn changed(&mut self) -> io::Result<()> {
        loop {
            let event = match self.stream.next().await {
                Some(e) => e?,
                None => return Err(io::Error::other("inotify stream ended")),
            };
            if event
                .mask
                .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED)
            {
                return Err(io::Error::other("a watched directory was removed or moved"));
            }
            let named = event
                .name
                .as_deref()
                .zip(self.names.get(&event.wd))
                .is_some_and(|(name, wanted)| wanted.contains(name));
            if event.mask.contains(EventMask::Q_OVERFLOW) || named {
                return Ok(());
            }
        }
    }
}

/// The (directory, name) pairs whose change can change what `path` opens: each
/// symbolic link met while following it, and the last component it ends on (which
/// may not exist). Relative paths are taken from the working directory.
pub fn watch_points(path: &Path) -> Vec<(PathBuf, OsString)> {
    let mut points = Vec::new();
    let mut current = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd,
        _ => PathBuf::from("/"),
    };
    let mut pending = steps(path);
    let mut links = 0;
    while let Some(step) = pending.pop() {
        let name = match step {
            Step::Root => {
                current = PathBuf::from("/");
                continue;
            }
            Step::Up => {
                current.pop();
                continue;
            }
            Step::Name(name) => name,
        };
        let next = current.join(&name);
        match std::fs::read_link(&next) {
            Ok(target) if links < MAX_LINKS && !is_magic(&next, &current.join(&target)) => {
                links += 1;
                points.push((current.clone(), name));
                pending.extend(steps(&target));
            }
            _ if pending.is_empty() || !next.is_dir() => {
                points.push((current, name));
                break;
            }
            _ => current = next,
        }
    }
    points
}

/// A link the kernel follows otherwise than its text says: `/proc/PID/root` of a
/// process in another mount namespace (the e2e suite's `--host-root`), an
/// `fd` link to a deleted file. It is not followed by its text (it cannot be
/// re-pointed either): where it leads, the kernel says.
fn is_magic(link: &Path, by_text: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(link), std::fs::metadata(by_text)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) != (b.dev(), b.ino()),
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

/// One component of a path being followed.
enum Step {
    Root,
    Up,
    Name(OsString),
}

/// The components of `path`, last first (a stack).
fn steps(path: &Path) -> Vec<Step> {
    path.components()
        .rev()
        .filter_map(|c| match c {
            Component::RootDir => Some(Step::Root),
            Component::ParentDir => Some(Step::Up),
            Component::Normal(n) => Some(Step::Name(n.to_os_string())),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn with_path(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("watching {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!("rw-mcwatch-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("mkdir");
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn point(dir: &Path, name: &str) -> (PathBuf, OsString) {
        (dir.to_path_buf(), OsString::from(name))
    }

    #[test]
    fn a_plain_file_is_watched_in_its_directory() {
        let d = Dir::new("plain");
        std::fs::write(d.0.join("currentconfig"), "x").expect("write");
        assert_eq!(
            watch_points(&d.0.join("currentconfig")),
            vec![point(&d.0, "currentconfig")]
        );
    }

    #[test]
    fn a_configmap_volume_is_followed_through_its_links() {
        // A ConfigMap volume: key -> ..data/key, ..data -> ..2024_01_01_00_00_00.1
        let d = Dir::new("configmap");
        let version = d.0.join("..2024_01_01_00_00_00.1");
        std::fs::create_dir(&version).expect("mkdir");
        std::fs::write(version.join("currentconfig"), "x").expect("write");
        std::os::unix::fs::symlink("..2024_01_01_00_00_00.1", d.0.join("..data")).expect("link");
        std::os::unix::fs::symlink("..data/currentconfig", d.0.join("currentconfig")).expect("link");
        assert_eq!(
            watch_points(&d.0.join("currentconfig")),
            vec![
                point(&d.0, "currentconfig"),
                point(&d.0, "..data"),
                point(&version, "currentconfig"),
            ]
        );
    }

    #[test]
    fn an_absolute_link_elsewhere_and_a_missing_directory() {
        let d = Dir::new("elsewhere");
        let other = d.0.join("other");
        std::fs::create_dir(&other).expect("mkdir");
        std::fs::write(other.join("real.json"), "x").expect("write");
        std::os::unix::fs::symlink(other.join("real.json"), d.0.join("link")).expect("link");
        assert_eq!(
            watch_points(&d.0.join("link")),
            vec![point(&d.0, "link"), point(&other, "real.json")]
        );
        // /etc/machine-config-daemon missing: watched for in its parent.
        assert_eq!(
            watch_points(&d.0.join("machine-config-daemon/currentconfig")),
            vec![point(&d.0, "machine-config-daemon")]
        );
        // A link the kernel follows elsewhere than its text says is not followed.
        let deleted = d.0.join("deleted");
        let file = std::fs::File::create(&deleted).expect("create");
        std::fs::remove_file(&deleted).expect("unlink");
        let fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        let fds = PathBuf::from(format!("/proc/{}/fd", std::process::id()));
        assert_eq!(
            watch_points(Path::new(&fd)).last(),
            Some(&point(&fds, &fd["/proc/self/fd/".len()..])),
            "the fd link itself, not the deleted path"
        );
        // A link loop ends after MAX_LINKS links.
        std::os::unix::fs::symlink("loop", d.0.join("loop")).expect("link");
        let points = watch_points(&d.0.join("loop"));
        assert_eq!(points.len(), MAX_LINKS + 1);
    }
}
