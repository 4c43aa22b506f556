//! Daemon, intent side: read the MachineConfig (the node's files in the MCO's
//! order, or the one file named), keep the last good intent when a new file is
//! broken, switch to an empty intent when the node has none (`absent`), and
//! re-read on a change of a watched file, at every resync and on SIGHUP.

use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::Daemon;
use crate::compare::SourceState;
use crate::input::{self, Loaded};
use crate::model::{Intent, Severity};
use crate::serve::mcwatch::FileWatch;

/// Wait after a MachineConfig change before reading it (writers settle).
const SETTLE: Duration = Duration::from_millis(50);

/// SIGHUP's stream; None (with a log line) when it cannot be had, and SIGHUP then
/// ends the daemon as it would by default.
pub(super) fn hangup_signal() -> Option<Signal> {
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP; it will stop the daemon");
            None
        }
    }
}

/// The next SIGHUP (never without a stream).
pub(super) async fn hangup(stream: &mut Option<Signal>) -> Option<()> {
    match stream {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// A watched file changed: watch again (a link may point elsewhere now), then
    /// read, so a change between the two is not lost.
    pub(super) async fn on_file(&mut self, changed: std::io::Result<()>) {
        if let Err(e) = changed {
            tracing::info!(error = %e, "the MachineConfig's watch broke; watching again");
        }
        tokio::time::sleep(SETTLE).await;
        self.watch_file();
        self.reload_intent();
        self.evaluate();
    }

    /// SIGHUP: watch again, read the MachineConfig, say what was read (its
    /// diagnostics too, also when nothing changed).
    pub(super) fn on_hangup(&mut self) {
        self.watch_file();
        if !self.reload_intent() && self.machineconfig == SourceState::Up {
            log_diagnostics(&self.mc_intent);
        }
        let file = self.intent.file.as_ref();
        tracing::info!(
            machineconfig = %source_words(&self.machineconfig),
            name = self.intent.machineconfig.as_deref().unwrap_or(""),
            path = file.map(|f| f.path.as_str()).unwrap_or(""),
            routes = self.intent.routes.len(),
            "SIGHUP: MachineConfig re-read"
        );
        self.evaluate();
    }

    pub(super) fn watch_file(&mut self) {
        if !self.config.intent_machineconfig {
            return;
        }
        match FileWatch::new(&self.config.machineconfig.watched()) {
            Ok(w) => self.file_watch = Some(w),
            Err(e) => {
                self.file_watch = None;
                tracing::warn!(error = %e, "cannot watch the MachineConfig; retrying at each resync");
            }
        }
    }

    /// Read the MachineConfig; on failure keep the last good intent. A node
    /// without one has an empty intent. Not when `--intent` leaves it out.
    /// True when a new intent was read (and logged, with its diagnostics).
    pub(super) fn reload_intent(&mut self) -> bool {
        if !self.config.intent_machineconfig {
            return false;
        }
        match input::read_intent(&self.config.machineconfig, &self.config.options) {
            Ok(Loaded::Found(found)) => {
                let intent = *found;
                let new = self.machineconfig != SourceState::Up || self.mc_intent != intent;
                if new {
                    log_read(&intent);
                }
                self.machineconfig = SourceState::Up;
                self.set_intent(intent);
                return new;
            }
            Ok(Loaded::Absent) => {
                if self.machineconfig != SourceState::Absent {
                    tracing::info!(looked = %self.config.machineconfig, "no MachineConfig on this node: source absent, the intent is empty");
                }
                self.machineconfig = SourceState::Absent;
                self.set_intent(Intent::default());
            }
            Err(e) => {
                if !matches!(&self.machineconfig, SourceState::Down(old) if *old == e.to_string()) {
                    // A good intent was read before when it came from a file
                    // (serve never reads stdin).
                    let effect = match self.mc_intent.file {
                        Some(_) => "keeping the last good intent",
                        None => "no intent was read yet: the MachineConfig's routes are not watched until it can be read",
                    };
                    tracing::warn!(source = "machineconfig", error = %e, kind = e.kind(), effect, "cannot read the MachineConfig");
                }
                self.machineconfig = SourceState::Down(e.to_string());
            }
        }
        false
    }
}

/// `intent read` and, at WARN, each of its diagnostics: where (a unit, a file
/// and line, never their contents) and what.
fn log_read(intent: &Intent) {
    tracing::info!(
        name = intent.machineconfig.as_deref().unwrap_or(""),
        path = intent.file.as_ref().map(|f| f.path.as_str()).unwrap_or(""),
        routes = intent.routes.len(),
        rules = intent.rules.len(),
        units = intent.units.len(),
        diagnostics = intent.diagnostics.len(),
        "intent read"
    );
    log_diagnostics(intent);
}

fn log_diagnostics(intent: &Intent) {
    for d in &intent.diagnostics {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        tracing::warn!(severity, origin = %d.origin, what = %d.message, "intent diagnostic");
    }
}

/// A source's state in a log line.
fn source_words(state: &SourceState) -> String {
    match state {
        SourceState::Up => "up".into(),
        SourceState::Absent => "absent".into(),
        SourceState::Skipped => "skipped".into(),
        SourceState::Down(why) => format!("down: {why}"),
    }
}
