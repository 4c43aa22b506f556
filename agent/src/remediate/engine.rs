//! Remediation, pure: after each evaluation, what is done about each route that
//! is not present, which action (at most one) starts now, which owners are
//! given up on, and when to look again. Time comes in as arguments; the daemon
//! does the acting and reports back with [`Engine::finished`].

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use super::decide::{decide, owner_of, Action, Context, Decision};
use super::guard::{Guard, Timing, Verdict, GIVE_UP_AFTER};
use super::state::{OwnerRecord, Record};
use super::Mode;
use crate::compare::{DriftReport, RouteState};
use crate::model::{rfc3339, ActionKind, Attempt, AttemptResult, NmView, RouteRemediation};

/// An action to start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The action.
    pub action: Action,
    /// The route it is for, in words.
    pub route: String,
    /// Why, in words.
    pub why: String,
}

/// An owner given up on in this evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    /// The action it would have been.
    pub action: ActionKind,
    /// The owner.
    pub owner: String,
    /// The route, in words.
    pub route: String,
}

/// What one evaluation leads to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Start this now.
    pub start: Option<Start>,
    /// Owners given up on now (each counted and logged once).
    pub gave_up: Vec<GaveUp>,
    /// Plan again at this time (a wait ends), even without news.
    pub wake: Option<Instant>,
    /// Per route of the report, in its order: what is done about it (None
    /// while it is present, and when remediation is off).
    pub routes: Vec<Option<RouteRemediation>>,
}

/// Decisions, guards and the last attempt on each owner.
#[derive(Debug, Clone)]
pub struct Engine {
    mode: Mode,
    timing: Timing,
    guard: Guard,
    last: BTreeMap<String, Attempt>,
}

impl Engine {
    /// An engine in `mode` with these timings.
    pub fn new(mode: Mode, timing: Timing) -> Engine {
        Engine {
            mode,
            timing,
            guard: Guard::default(),
            last: BTreeMap::new(),
        }
    }

    /// `--remediate`.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Plan after an evaluation.
    pub fn plan(
        &mut self,
        report: &DriftReport,
        view: Option<&NmView>,
        now: Instant,
        wall: SystemTime,
    ) -> Plan {
        let mut plan = Plan {
            routes: vec![None; report.routes.len()],
            ..Plan::default()
        };
        if self.mode == Mode::Off {
            return plan;
        }
        let mut routes = std::mem::take(&mut plan.routes);
        self.observe(report, view, now);
        let ctx = Context {
            sources: &report.sources,
            units: &report.units,
            view,
        };
        for (slot, v) in routes.iter_mut().zip(&report.routes) {
            if v.state == RouteState::Present {
                continue;
            }
            let route = v.expected.describe();
            let shown = match decide(v, ctx) {
                Decision::Hold(why) => {
                    let owner = owner_of(&v.expected, view);
                    self.shown(None, owner, why)
                }
                Decision::Act(action, why) => {
                    let verdict = self.verdict(&action, &route, now);
                    self.act_on(verdict, action, route, why, (now, wall), &mut plan)
                }
            };
            *slot = Some(shown);
        }
        plan.routes = routes;
        plan
    }

    /// The action of `start` ended now with `result`: the record it leaves.
    pub fn finished(
        &mut self,
        start: &Start,
        result: AttemptResult,
        error: Option<String>,
        wall: SystemTime,
    ) -> Attempt {
        self.guard.finished();
        let attempt = Attempt {
            action: start.action.kind,
            owner: start.action.owner.clone(),
            result,
            at: rfc3339(micros(wall)),
            error,
        };
        self.last.insert(attempt.owner.clone(), attempt.clone());
        attempt
    }

    /// The intent changed: owners given up on are tried again, backoffs start over.
    pub fn intent_changed(&mut self) {
        self.guard.reset();
    }

    /// Owners waiting for their next attempt, with when (for the metric).
    pub fn next_attempts(&self, now: Instant, wall: SystemTime) -> Vec<(String, SystemTime)> {
        self.guard
            .owners()
            .filter(|(_, s)| !s.gave_up)
            .filter_map(|(owner, s)| Some((owner.clone(), at_wall(s.next_attempt?, now, wall))))
            .collect()
    }

    /// What `check` reads back.
    pub fn record(&self, now: Instant, wall: SystemTime) -> Record {
        let mut owners: BTreeMap<String, OwnerRecord> = BTreeMap::new();
        for (owner, s) in self.guard.owners() {
            let entry = owners.entry(owner.clone()).or_default();
            entry.gave_up = s.gave_up;
            entry.next_attempt_at = s
                .next_attempt
                .filter(|_| !s.gave_up)
                .map(|at| rfc3339(micros(at_wall(at, now, wall))));
        }
        for (owner, attempt) in &self.last {
            owners.entry(owner.clone()).or_default().last_attempt = Some(attempt.clone());
        }
        Record {
            mode: self.mode.as_str().to_owned(),
            written_at: rfc3339(micros(wall)),
            owners,
        }
    }

    /// Feed the guard: which routes are missing, which owners are whole.
    fn observe(&mut self, report: &DriftReport, view: Option<&NmView>, now: Instant) {
        let mut whole: BTreeMap<String, bool> = BTreeMap::new();
        let mut missing = Vec::new();
        for v in &report.routes {
            let present = v.state == RouteState::Present;
            if !present {
                missing.push(v.expected.describe());
            }
            if let Some(owner) = owner_of(&v.expected, view) {
                *whole.entry(owner).or_insert(true) &= present;
            }
        }
        let healthy: Vec<String> = whole.into_iter().filter(|(_, ok)| *ok).map(|(o, _)| o).collect();
        self.guard.observe(&missing, &healthy, now);
    }

    fn verdict(&self, action: &Action, route: &str, now: Instant) -> Verdict {
        let gives_up = action.kind == ActionKind::RestartUnit;
        self.guard
            .check(&action.owner, route, gives_up, &self.timing, now)
    }

    fn act_on(
        &mut self,
        verdict: Verdict,
        action: Action,
        route: String,
        why: String,
        (now, wall): (Instant, SystemTime),
        plan: &mut Plan,
    ) -> RouteRemediation {
        let (kind, owner) = (action.kind, action.owner.clone());
        match verdict {
            Verdict::Act if plan.start.is_none() => {
                self.guard.started(&owner, &self.timing, now);
                plan.start = Some(Start {
                    action,
                    route,
                    why: why.clone(),
                });
                self.shown(Some(kind), Some(owner), why)
            }
            Verdict::Act | Verdict::Busy => self.shown(Some(kind), Some(owner), why),
            Verdict::Wait(at) => {
                plan.wake = Some(plan.wake.map_or(at, |w| w.min(at)));
                let mut shown = self.shown(Some(kind), Some(owner), why);
                shown.next_attempt_at = Some(rfc3339(micros(at_wall(at, now, wall))));
                shown
            }
            Verdict::GiveUp => {
                self.guard.give_up(&owner);
                let attempt = Attempt {
                    action: kind,
                    owner: owner.clone(),
                    result: AttemptResult::GaveUp,
                    at: rfc3339(micros(wall)),
                    error: None,
                };
                self.last.insert(owner.clone(), attempt);
                plan.gave_up.push(GaveUp {
                    action: kind,
                    owner: owner.clone(),
                    route,
                });
                self.shown(None, Some(owner.clone()), gave_up_words(&owner))
            }
            Verdict::GaveUp => self.shown(None, Some(owner.clone()), gave_up_words(&owner)),
        }
    }

    fn shown(&self, action: Option<ActionKind>, owner: Option<String>, why: String) -> RouteRemediation {
        let last_attempt = owner.as_ref().and_then(|o| self.last.get(o)).cloned();
        RouteRemediation {
            action,
            owner,
            why,
            next_attempt_at: None,
            last_attempt,
        }
    }
}

fn gave_up_words(owner: &str) -> String {
    format!(
        "gave up on {owner}: {GIVE_UP_AFTER} restarts in a row did not bring the route back; \
         nothing more is done until the intent changes"
    )
}

fn at_wall(at: Instant, now: Instant, wall: SystemTime) -> SystemTime {
    match at.checked_duration_since(now) {
        Some(ahead) => wall + ahead,
        None => wall - now.duration_since(at),
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
