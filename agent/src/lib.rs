//! routewarden: checks that the static routes a node's rendered MachineConfig
//! declares are in the kernel, and explains each one that is not.
//!
//! The pipeline: [`intent`] (MachineConfig -> [`model::Intent`]) and [`observe`]
//! (netlink, D-Bus -> observations) feed [`compare`] (pure), whose report the CLI
//! prints and the daemon publishes.

pub mod check;
pub mod cli;
pub mod compare;
pub mod input;
pub mod intent;
pub mod lint;
pub mod logging;
pub mod model;
pub mod observe;
pub mod paths;
pub mod publish;
pub mod remediate;
pub mod serve;
