//! Remediation: when an owner may be acted on again. Pure: time comes in as
//! arguments, so the rules are tested without waiting.
//!
//! - A route must have been missing for `after` (the `--remediate-after`) before
//!   its owner is acted on.
//! - One action at a time, across owners.
//! - Per owner, an exponential backoff after each attempt: `base`, 2x, 4x...,
//!   capped at one hour; it resets once the owner's routes have all stayed
//!   present for ten minutes.
//! - A unit restarted [`GIVE_UP_AFTER`] times in a row without its routes coming
//!   back in between is not restarted again until the intent changes: the next
//!   time it would be, the guard says [`Verdict::GiveUp`] instead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Attempts in a row without success after which a unit is left alone.
pub const GIVE_UP_AFTER: u32 = 3;
/// The longest wait between two attempts on one owner.
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);
/// How long an owner's routes must stay present for its backoff to reset.
pub const HEALED_FOR: Duration = Duration::from_secs(600);

/// The timing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a route stays missing before its owner is acted on.
    pub after: Duration,
    /// The first wait after an attempt (doubled after each further one).
    pub base: Duration,
}

impl Timing {
    /// The wait after `attempts` attempts in a row.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(BACKOFF_CAP)
    }
}

/// What is known of one owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerState {
    /// Attempts since its routes were last all present for [`HEALED_FOR`]
    /// (the backoff's exponent).
    pub attempts: u32,
    /// Attempts since its routes were last all present at all.
    pub in_vain: u32,
    /// No earlier than this for the next attempt.
    pub next_attempt: Option<Instant>,
    /// Since when its routes are all present (None while one is missing).
    pub healthy_since: Option<Instant>,
    /// It was given up on.
    pub gave_up: bool,
}

/// The owners' states and when each missing route went missing.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    owners: BTreeMap<String, OwnerState>,
    missing_since: BTreeMap<String, Instant>,
    in_flight: bool,
}

/// What the guard says of an owner with a missing route, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Act now.
    Act,
    /// Not yet: ask again at that time.
    Wait(Instant),
    /// Another action is running.
    Busy,
    /// Given up on (until the intent changes).
    GaveUp,
    /// Give up now: [`GIVE_UP_AFTER`] attempts did not bring its routes back
    /// (only for owners that give up: units).
    GiveUp,
}

impl Guard {
    /// The owner's state.
    pub fn owner(&self, owner: &str) -> Option<&OwnerState> {
        self.owners.get(owner)
    }

    /// Every owner's state.
    pub fn owners(&self) -> impl Iterator<Item = (&String, &OwnerState)> {
        self.owners.iter()
    }

    /// Note which routes are missing now (by an identity of the route) and
    /// which owners have all their routes present: starts the missing clocks,
    /// and resets an owner's backoff after [`HEALED_FOR`] of health.
    pub fn observe(&mut self, missing: &[String], healthy_owners: &[String], now: Instant) {
        self.missing_since.retain(|route, _| missing.contains(route));
        for route in missing {
            self.missing_since.entry(route.clone()).or_insert(now);
        }
        for (name, state) in &mut self.owners {
            let healthy = healthy_owners.contains(name);
            let since = if healthy {
                state.in_vain = 0;
                Some(*state.healthy_since.get_or_insert(now))
            } else {
                state.healthy_since.take()
            };
            if since.is_some_and(|since| now.duration_since(since) >= HEALED_FOR) {
                state.attempts = 0;
                state.next_attempt = None;
            }
        }
    }

    /// May `owner` be acted on for the missing `route`? `gives_up`: the owner
    /// is given up on after [`GIVE_UP_AFTER`] attempts in vain (units are,
    /// NetworkManager re-applies and activations are not).
    pub fn check(&self, owner: &str, route: &str, gives_up: bool, timing: &Timing, now: Instant) -> Verdict {
        let state = self.owners.get(owner);
        if state.is_some_and(|s| s.gave_up) {
            return Verdict::GaveUp;
        }
        let due = self
            .missing_since
            .get(route)
            .map_or(now + timing.after, |since| *since + timing.after);
        let due = match state.and_then(|s| s.next_attempt) {
            Some(next) => due.max(next),
            None => due,
        };
        if due > now {
            return Verdict::Wait(due);
        }
        if self.in_flight {
            return Verdict::Busy;
        }
        if gives_up && state.is_some_and(|s| s.in_vain >= GIVE_UP_AFTER) {
            return Verdict::GiveUp;
        }
        Verdict::Act
    }

    /// An action on `owner` starts now. Returns the number of the attempt in
    /// vain it is.
    pub fn started(&mut self, owner: &str, timing: &Timing, now: Instant) -> u32 {
        self.in_flight = true;
        let state = self.owners.entry(owner.to_owned()).or_default();
        state.attempts += 1;
        state.in_vain += 1;
        state.next_attempt = Some(now + timing.backoff(state.attempts));
        state.in_vain
    }

    /// The running action ended.
    pub fn finished(&mut self) {
        self.in_flight = false;
    }

    /// The owner is left alone until the intent changes.
    pub fn give_up(&mut self, owner: &str) {
        let state = self.owners.entry(owner.to_owned()).or_default();
        state.gave_up = true;
        state.next_attempt = None;
    }

    /// The intent changed: everything starts over.
    pub fn reset(&mut self) {
        let in_flight = self.in_flight;
        *self = Guard::default();
        self.in_flight = in_flight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn timing() -> Timing {
        Timing {
            after: MIN,
            base: MIN,
        }
    }

    /// The guard lets `u.service` be acted on for `r` now (attempt `n`), and
    /// the action runs to its end.
    fn attempt(g: &mut Guard, t: &Timing, now: Instant, n: u32) {
        assert_eq!(
            g.check("u.service", "r", true, t, now),
            Verdict::Act,
            "attempt {n}"
        );
        g.started("u.service", t, now);
        g.finished();
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let t = timing();
        let waits: Vec<u64> = (1..=8).map(|n| t.backoff(n).as_secs() / 60).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(t.backoff(100), BACKOFF_CAP);
    }

    #[test]
    fn a_route_must_be_missing_long_enough_then_one_action_at_a_time() {
        let (t, t0) = (timing(), Instant::now());
        let mut g = Guard::default();
        let route = "r1".to_owned();
        g.observe(std::slice::from_ref(&route), &[], t0);
        assert_eq!(g.check("u.service", "r1", true, &t, t0), Verdict::Wait(t0 + MIN));
        let later = t0 + MIN;
        assert_eq!(g.check("u.service", "r1", true, &t, later), Verdict::Act);
        assert_eq!(g.started("u.service", &t, later), 1);
        g.observe(&["r1".into(), "r2".into()], &[], later);
        assert_eq!(
            g.check("v.service", "r2", true, &t, later + MIN),
            Verdict::Busy,
            "one in flight"
        );
        g.finished();
        assert_eq!(g.check("v.service", "r2", true, &t, later + MIN), Verdict::Act);
    }

    #[test]
    fn each_attempt_doubles_the_wait_and_a_unit_is_given_up_after_three() {
        let (t, mut now) = (timing(), Instant::now());
        let mut g = Guard::default();
        g.observe(&["r".into()], &[], now);
        now += MIN;
        let mut waits = Vec::new();
        for n in 1..=GIVE_UP_AFTER {
            attempt(&mut g, &t, now, n);
            match g.check("u.service", "r", true, &t, now) {
                Verdict::Wait(at) => {
                    waits.push(at.duration_since(now).as_secs() / 60);
                    now = at;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(waits, [1, 2, 4], "1, 2 then 4 minutes");
        assert_eq!(
            g.check("u.service", "r", true, &t, now),
            Verdict::GiveUp,
            "three in vain"
        );
        assert_eq!(
            g.check("connection/c", "r", false, &t, now + MIN),
            Verdict::Act,
            "a re-apply is never given up"
        );
        g.give_up("u.service");
        assert_eq!(
            g.check("u.service", "r", true, &t, now + BACKOFF_CAP),
            Verdict::GaveUp
        );
        g.reset();
        g.observe(&["r".into()], &[], now);
        assert_eq!(
            g.check("u.service", "r", true, &t, now + MIN),
            Verdict::Act,
            "a new intent starts over"
        );
    }

    #[test]
    fn a_route_back_in_between_is_no_attempt_in_vain_but_keeps_the_backoff() {
        let (t, mut now) = (timing(), Instant::now());
        let mut g = Guard::default();
        g.observe(&["r".into()], &[], now);
        now += MIN;
        for n in 1..=5 {
            attempt(&mut g, &t, now, n);
            g.observe(&[], &["u.service".to_owned()], now + MIN);
            g.observe(&["r".into()], &[], now + 2 * MIN);
            now = match g.check("u.service", "r", true, &t, now + 2 * MIN) {
                Verdict::Wait(at) => at,
                other => panic!("attempt {n}: {other:?}"),
            };
        }
        let state = g.owner("u.service").cloned().unwrap_or_default();
        assert_eq!(
            (state.attempts, state.in_vain),
            (5, 0),
            "back each time, never for ten minutes"
        );
    }

    #[test]
    fn health_that_ends_unseen_for_ten_minutes_still_resets() {
        let (t, t0) = (timing(), Instant::now());
        let mut g = Guard::default();
        g.observe(&["r".into()], &[], t0);
        g.started("u.service", &t, t0 + MIN);
        g.finished();
        g.observe(&[], &["u.service".to_owned()], t0 + 2 * MIN);
        g.observe(&["r".into()], &[], t0 + 30 * MIN);
        let state = g.owner("u.service").cloned().unwrap_or_default();
        assert_eq!((state.attempts, state.next_attempt), (0, None));
    }

    #[test]
    fn ten_minutes_of_health_reset_the_backoff() {
        let (t, t0) = (timing(), Instant::now());
        let mut g = Guard::default();
        g.observe(&["r".into()], &[], t0);
        g.started("u.service", &t, t0 + MIN);
        g.finished();
        g.started("u.service", &t, t0 + 3 * MIN);
        g.finished();
        assert_eq!(g.owner("u.service").map(|s| s.attempts), Some(2));
        let healthy = ["u.service".to_owned()];
        g.observe(&[], &healthy, t0 + 4 * MIN);
        g.observe(&[], &healthy, t0 + 10 * MIN);
        assert_eq!(
            g.owner("u.service").map(|s| s.attempts),
            Some(2),
            "not yet ten minutes"
        );
        g.observe(&[], &healthy, t0 + 14 * MIN);
        assert_eq!(g.owner("u.service").map(|s| s.attempts), Some(0), "reset");
        g.observe(&["r".into()], &[], t0 + 15 * MIN);
        assert_eq!(g.check("u.service", "r", true, &t, t0 + 16 * MIN), Verdict::Act);
    }
}
