//! Helpers shared by the integration tests: real components started and stopped by
//! the test itself. Each test binary uses what it needs (`mod common;`).

#![allow(dead_code)]

pub mod cgroup;
pub mod process;
pub mod silent_socket;
pub mod systemd_units;
pub mod user_systemd;
