//! Daemon, intent side: notice when the MachineConfig file changes. The
//! machine-config-daemon replaces it atomically (write, then rename), so the
//! directory is watched with inotify for that name.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use inotify::{EventStream, Inotify, WatchMask};

/// A watch on one file's directory.
pub struct FileWatch {
    stream: EventStream<Vec<u8>>,
    name: OsString,
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatch").field("name", &self.name).finish()
    }
}

impl FileWatch {
    /// Watch `file` (its directory must exist).
    pub fn new(file: &Path) -> io::Result<FileWatch> {
        let dir = parent(file);
        let name = file
            .file_name()
            .map(OsString::from)
            .ok_or_else(|| io::Error::other(format!("{}: not a file path", file.display())))?;
        let inotify = Inotify::init().map_err(|e| with_path(&dir, e))?;
        let mask = WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::ATTRIB
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        inotify
            .watches()
            .add(&dir, mask)
            .map_err(|e| with_path(&dir, e))?;
        let stream = inotify
            .into_event_stream(vec![0u8; 4096])
            .map_err(|e| with_path(&dir, e))?;
        Ok(FileWatch { stream, name })
    }

    /// Wait until the file may have changed. `Err` when the watch broke (the
    /// directory went away); the caller makes a new one later.
    pub async fn changed(&mut self) -> io::Result<()> {
        loop {
            let event = match self.stream.next().await {
                Some(e) => e?,
                None => return Err(io::Error::other("inotify stream ended")),
            };
            if event
                .mask
                .intersects(inotify::EventMask::DELETE_SELF | inotify::EventMask::MOVE_SELF)
            {
                return Err(io::Error::other("the watched directory was removed"));
            }
            if event.mask.contains(inotify::EventMask::Q_OVERFLOW)
                || event.name.as_deref() == Some(&*self.name)
            {
                return Ok(());
            }
        }
    }
}

fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn with_path(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("watching {}: {e}", dir.display()))
}
