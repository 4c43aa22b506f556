//! Command-line flags. Every host path is resolved under `--host-root`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::input::InputPath;
use crate::paths::HostRoot;

/// Checks that the static routes a node's MachineConfig declares are in the
/// kernel, and explains each one that is not.
#[derive(Debug, Parser)]
#[command(name = "routewarden", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the routes and units the MachineConfig declares (no live node needed).
    Expected(ExpectedArgs),
}

/// Where the intent comes from.
#[derive(Debug, Clone, Args)]
pub struct IntentArgs {
    /// The MachineConfig (JSON or YAML; `-` for stdin). Default:
    /// <host-root>/etc/machine-config-daemon/currentconfig.
    #[arg(long, value_name = "PATH")]
    pub machineconfig: Option<String>,
    /// Where the host's root filesystem is mounted.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
    /// The node's name, for per-host nmstate files. Default: the hostname.
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node_name: Option<String>,
}

impl IntentArgs {
    /// The host root.
    pub fn host(&self) -> HostRoot {
        HostRoot::new(&self.host_root)
    }

    /// The MachineConfig to read.
    pub fn input(&self) -> InputPath {
        match self.machineconfig.as_deref() {
            Some("-") => InputPath::Stdin,
            Some(p) => InputPath::File(PathBuf::from(p)),
            None => InputPath::File(self.host().current_config()),
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Text,
    /// JSON for tools.
    Json,
}

/// `routewarden expected`.
#[derive(Debug, Args)]
pub struct ExpectedArgs {
    /// Where the intent comes from.
    #[command(flatten)]
    pub intent: IntentArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}
