//! Cgroups of their own for processes a test starts, so that a test's processes
//! can be found (and killed by PID) and never share a cgroup with another test's.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;

use super::process::{signal, wait_for};

/// Roots of the cgroup hierarchies systemd may use (hybrid, legacy, unified).
const CGROUP_ROOTS: &[&str] = &[
    "/sys/fs/cgroup/systemd",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup",
];

/// A fresh cgroup named `tag` in each writable hierarchy; none where that fails
/// (the manager then shares the cgroup of this process).
pub fn make_cgroups(tag: &str) -> Vec<PathBuf> {
    CGROUP_ROOTS
        .iter()
        .map(Path::new)
        .filter(|root| root.join("cgroup.procs").exists())
        .map(|root| root.join(tag))
        .filter(|path| fs::create_dir(path).is_ok())
        .collect()
}

/// SIGKILL every process left in a cgroup tree (all started by this manager).
pub fn kill_cgroup(cgroup: &Path) {
    for dir in cgroup_tree(cgroup) {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            signal(pid, Signal::KILL);
        }
    }
}

/// Remove a cgroup tree, deepest first, waiting for killed processes to go.
pub fn remove_cgroup(cgroup: &Path, timeout: Duration) {
    let mut dirs = cgroup_tree(cgroup);
    dirs.reverse();
    let _ = wait_for("the cgroup to empty", timeout, || {
        dirs.retain(|d| fs::remove_dir(d).is_err() && d.exists());
        Ok(dirs.is_empty())
    });
}

/// A cgroup and every cgroup below it, parents first.
fn cgroup_tree(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let children = fs::read_dir(&out[i]).into_iter().flatten().flatten();
        let dirs: Vec<PathBuf> = children
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        out.extend(dirs);
        i += 1;
    }
    out
}
