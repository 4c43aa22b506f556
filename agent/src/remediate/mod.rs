//! Act stage (opt-in, `serve --remediate`): put a missing route back the way
//! the node adds it, through its owner, never by writing routes or files. After
//! compare: [`decide`] (pure) says which action fixes a route, [`guard`] (pure)
//! when an owner may be acted on, [`engine`] (pure) ties them to the reports,
//! [`act`] does one action over D-Bus, and [`state`] is the record `check`
//! reads back.

pub mod act;
pub mod decide;
pub mod engine;
pub mod guard;
mod proxy;
pub mod state;
#[cfg(test)]
mod tests;

use std::fmt;

pub use decide::{decide, owner_of, Action, Context, Decision, Target};
pub use engine::{Engine, Plan};

/// `--remediate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Decide nothing, do nothing (the default).
    #[default]
    Off,
    /// Decide as `on` does; log and count, change nothing.
    DryRun,
    /// Decide and act.
    On,
}

impl Mode {
    /// As the flag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DryRun => "dry-run",
            Mode::On => "on",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
