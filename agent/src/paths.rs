//! Every host path resolved under one root (`--host-root`), so a DaemonSet that
//! mounts the host at `/host` needs one flag.

use std::path::{Path, PathBuf};

/// Where the MachineConfig daemon keeps the node's current rendered config.
pub const CURRENT_CONFIG: &str = "/etc/machine-config-daemon/currentconfig";
/// Where its daemon keeps the config of the last in-place update on HyperShift
/// nodes, whose `currentconfig` is empty.
pub const MCD_CURRENT_CONFIG: &str = "/etc/mcd-currentconfig.json";
/// The MachineConfig the Machine Config Server put into the node's Ignition when
/// it was provisioned.
pub const MCS_CONTENT: &str = "/etc/mcs-machine-config-content.json";
/// The image pull spec of an on-cluster layered node (empty when not layered).
pub const CURRENT_IMAGE: &str = "/etc/machine-config-daemon/currentimage";

/// The files a node's MachineConfig is read from, in the order the Machine Config
/// Operator's daemon reads them: the first that holds a config is the one.
pub const NODE_CONFIGS: [&str; 3] = [CURRENT_CONFIG, MCD_CURRENT_CONFIG, MCS_CONTENT];

/// The host's root as this process sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot(PathBuf);

impl HostRoot {
    /// A host root (`/` on the node itself, `/host` in the DaemonSet).
    pub fn new(root: impl Into<PathBuf>) -> HostRoot {
        HostRoot(root.into())
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.0
    }

    /// Resolve an absolute host path under the root.
    pub fn resolve(&self, host_path: &str) -> PathBuf {
        self.0.join(host_path.trim_start_matches('/'))
    }

    /// The rendered MachineConfig on this host.
    pub fn current_config(&self) -> PathBuf {
        self.resolve(CURRENT_CONFIG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_under_root() {
        let h = HostRoot::new("/host");
        assert_eq!(
            h.current_config(),
            PathBuf::from("/host/etc/machine-config-daemon/currentconfig")
        );
        assert_eq!(HostRoot::new("/").resolve("/etc/x"), PathBuf::from("/etc/x"));
    }
}
