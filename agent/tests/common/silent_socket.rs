//! A Unix socket that accepts connections (the kernel does, into its backlog)
//! and never answers: what a hung bus looks like to a client.

use std::io;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// A listening socket nobody serves, in a directory removed on drop.
#[derive(Debug)]
pub struct SilentSocket {
    dir: PathBuf,
    _listener: UnixListener,
}

impl SilentSocket {
    /// Listen on `<tmp>/routewarden-silent-<pid>-<n>/bus`.
    pub fn new() -> io::Result<SilentSocket> {
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let tag = format!("routewarden-silent-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(tag);
        std::fs::create_dir_all(&dir)?;
        let listener = UnixListener::bind(dir.join("bus"))?;
        Ok(SilentSocket {
            dir,
            _listener: listener,
        })
    }

    /// `unix:path=...` of the socket.
    pub fn address(&self) -> String {
        format!("unix:path={}", self.dir.join("bus").display())
    }
}

impl Drop for SilentSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
