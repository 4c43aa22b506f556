//! The daemon's remediation side (`--remediate`): after each evaluation the
//! engine plans; at most one action runs at a time, as a task; its end is
//! counted, logged, recorded for `check`, and leads to a new plan. `dry-run`
//! plans alike and ends each action at once, doing nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::Daemon;
use crate::compare::DriftReport;
use crate::model::AttemptResult;
use crate::publish::metrics::{OwnerLabels, RemediationLabels};
use crate::remediate::act::{self, ActError};
use crate::remediate::engine::Start;
use crate::remediate::guard::Timing;
use crate::remediate::state::{self, Record};
use crate::remediate::{Engine, Mode};

/// What `serve` was told about remediation.
#[derive(Debug, Clone)]
pub struct RemediationConfig {
    /// `--remediate`.
    pub mode: Mode,
    /// `--remediate-after`.
    pub after: Duration,
    /// The first backoff (`--remediate-backoff`, hidden: for tests).
    pub backoff: Duration,
    /// `--remediation-state`.
    pub state: PathBuf,
}

type ActTask = JoinHandle<Result<(), ActError>>;

/// The engine, the running action and when to plan again.
pub(super) struct Remediation {
    engine: Engine,
    pub(super) running: Option<(Start, ActTask)>,
    pub(super) wake: Option<Instant>,
    state: PathBuf,
    state_failed: bool,
    /// The record as last written (rewritten only when it changes).
    written: Option<Record>,
}

impl Remediation {
    pub(super) fn new(config: &RemediationConfig) -> Remediation {
        let timing = Timing {
            after: config.after,
            base: config.backoff,
        };
        Remediation {
            engine: Engine::new(config.mode, timing),
            running: None,
            wake: None,
            state: config.state.clone(),
            state_failed: false,
            written: None,
        }
    }

    pub(super) fn mode(&self) -> Mode {
        self.engine.mode()
    }

    pub(super) fn intent_changed(&mut self) {
        self.engine.intent_changed();
    }
}

/// The running action's end (never, while none runs).
pub(super) async fn action_done(running: &mut Option<(Start, ActTask)>) -> Result<(), ActError> {
    match running {
        Some((_, task)) => match task.await {
            Ok(result) => result,
            Err(e) => Err(ActError::Call {
                call: "task",
                target: "the remediation task".into(),
                why: e.to_string(),
            }),
        },
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Plan after an evaluation, fill in each route's remediation, start what
    /// is due.
    pub(super) fn plan_remediation(&mut self, report: &mut DriftReport) {
        if self.remediation.mode() == Mode::Off {
            return;
        }
        let (now, wall) = (Instant::now(), SystemTime::now());
        let plan = self
            .remediation
            .engine
            .plan(report, self.nm.view.as_ref(), now, wall);
        for (v, shown) in report.routes.iter_mut().zip(plan.routes) {
            v.remediation = shown;
        }
        self.remediation.wake = plan.wake;
        for g in &plan.gave_up {
            self.count(g.action.as_str(), &g.owner, AttemptResult::GaveUp);
            tracing::warn!(
                action = g.action.as_str(),
                owner = %g.owner,
                route = %g.route,
                result = "gave-up",
                "remediation: restarted three times in a row without the route coming back; \
                 left alone until the intent changes"
            );
        }
        if let Some(start) = plan.start {
            self.start_action(start);
        }
        self.publish_remediation(now, wall);
    }

    fn start_action(&mut self, start: Start) {
        let (action, owner) = (start.action.kind.as_str(), start.action.owner.clone());
        if self.remediation.mode() == Mode::DryRun {
            tracing::info!(action, owner = %owner, route = %start.route, why = %start.why, result = "dry-run",
                "remediation (dry-run): would act");
            self.count(action, &owner, AttemptResult::DryRun);
            let wall = SystemTime::now();
            self.remediation
                .engine
                .finished(&start, AttemptResult::DryRun, None, wall);
            return;
        }
        tracing::info!(action, owner = %owner, route = %start.route, why = %start.why, "remediation: acting");
        let address = self.config.dbus_address.clone();
        let todo = start.action.clone();
        let task = tokio::spawn(async move { act::run(address.as_deref(), &todo).await });
        self.remediation.running = Some((start, task));
    }

    /// The running action ended: count, log, record; then evaluate again (the
    /// plan after it may start the next).
    pub(super) fn on_action_done(&mut self, outcome: Result<(), ActError>) {
        let Some((start, _)) = self.remediation.running.take() else {
            return;
        };
        let (action, owner) = (start.action.kind.as_str(), start.action.owner.clone());
        let (result, error) = match &outcome {
            Ok(()) => (AttemptResult::Success, None),
            Err(e) => (AttemptResult::Failed, Some(e.to_string())),
        };
        match &outcome {
            Ok(()) => tracing::info!(action, owner = %owner, route = %start.route, result = "success",
                "remediation done"),
            Err(e) => tracing::warn!(action, owner = %owner, route = %start.route, result = "failed",
                kind = e.kind(), error = %e, "remediation failed"),
        }
        self.count(action, &owner, result);
        self.remediation
            .engine
            .finished(&start, result, error, SystemTime::now());
        self.evaluate();
    }

    fn count(&self, action: &'static str, owner: &str, result: AttemptResult) {
        let labels = RemediationLabels {
            action,
            owner: owner.to_owned(),
            result: result.as_str(),
        };
        self.metrics.remediations.get_or_create(&labels).inc();
    }

    /// The next-attempt series and the record `check` reads.
    fn publish_remediation(&mut self, now: Instant, wall: SystemTime) {
        let family = &self.metrics.remediation_next_attempt;
        family.clear();
        for (owner, at) in self.remediation.engine.next_attempts(now, wall) {
            let secs = at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            family.get_or_create(&OwnerLabels { owner }).set(secs);
        }
        let record = self.remediation.engine.record(now, wall);
        let same = |old: &Record| old.mode == record.mode && old.owners == record.owners;
        if self.remediation.written.as_ref().is_some_and(same) {
            return;
        }
        match state::write(&self.remediation.state, &record) {
            Ok(()) => {
                self.remediation.state_failed = false;
                self.remediation.written = Some(record);
            }
            Err(e) if !self.remediation.state_failed => {
                self.remediation.state_failed = true;
                tracing::warn!(path = %self.remediation.state.display(), error = %e,
                    "cannot write the remediation record; check will not show the last attempts");
            }
            Err(_) => {}
        }
    }
}
