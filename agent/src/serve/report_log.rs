//! Daemon: the log lines an evaluation is worth, said once. Each source of
//! truth that cannot be read is a warning the first time and whenever its
//! reason changes (also when it is down from startup), and a line when it is
//! back; each route, rule or unit that starts drifting is a warning of its
//! own (what, its state, its reasons), one that drifts differently another,
//! and one that stops drifting an info line. An evaluation that changes
//! nothing logs nothing. The MachineConfig's own source is logged where it is
//! read (`daemon/intent.rs`), which knows whether a last good intent is kept.

use std::collections::BTreeMap;

use crate::compare::{DriftReport, RouteState, RuleState, SourceState, UnitState};

/// The reason of a D-Bus source before its task's first answer (the startup's
/// first evaluation can come before it): not a failure, not logged.
pub(super) const NOT_CONNECTED: &str = "not connected yet";

/// Lines of one kind logged per evaluation at most; the rest is one count.
const MOST: usize = 20;

/// What was last logged.
#[derive(Debug, Default)]
pub(super) struct ReportLog {
    /// The netlink, systemd and NetworkManager sources as last logged (None
    /// before the first evaluation).
    sources: Option<[SourceState; 3]>,
    /// Each item in drift: its key and what is said of it.
    drift: BTreeMap<Item, Drift>,
}

/// A route, rule or unit, as named in a log line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Item {
    /// `route`, `rule` or `unit`.
    pub(super) kind: &'static str,
    /// `ipv4 10.0.0.0/16 via 192.0.2.1 dev ens5 table main`, a rule, a unit name.
    pub(super) name: String,
}

/// How an item drifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Drift {
    /// `missing`, `mismatched`, `unselected`, `failed`...
    pub(super) state: &'static str,
    /// Reason codes, comma-separated.
    pub(super) reasons: String,
    /// Reasons in words, `; `-separated.
    pub(super) why: String,
}

/// One change worth a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    /// A source could not be read (first time, or for another reason).
    SourceDown(&'static str, String),
    /// A source is back.
    SourceUp(&'static str),
    /// A source is not there, and that is no fault (NetworkManager not installed).
    SourceAbsent(&'static str),
    /// An item started drifting.
    Started(Item, Drift),
    /// An item drifts in another way.
    Changed(Item, Drift),
    /// An item is fine again.
    Stopped(Item),
}

impl ReportLog {
    /// Log what changed since the last report.
    pub(super) fn report(&mut self, report: &DriftReport) {
        emit(self.changes(report));
    }

    /// What changed since the last report (and remember this one).
    pub(super) fn changes(&mut self, report: &DriftReport) -> Vec<Change> {
        let s = &report.sources;
        let now = [s.netlink.clone(), s.systemd.clone(), s.networkmanager.clone()];
        let mut out = source_changes(self.sources.as_ref(), &now);
        self.sources = Some(now);
        let drift = drift_of(report);
        for (item, d) in &drift {
            match self.drift.get(item) {
                None => out.push(Change::Started(item.clone(), d.clone())),
                Some(old) if old != d => out.push(Change::Changed(item.clone(), d.clone())),
                Some(_) => {}
            }
        }
        out.extend(
            self.drift
                .keys()
                .filter(|k| !drift.contains_key(*k))
                .map(|k| Change::Stopped(k.clone())),
        );
        self.drift = drift;
        out
    }
}

const NAMES: [&str; 3] = ["netlink", "systemd", "networkmanager"];

fn source_changes(before: Option<&[SourceState; 3]>, now: &[SourceState; 3]) -> Vec<Change> {
    let mut out = Vec::new();
    let waiting = |s: &&SourceState| matches!(s, SourceState::Down(why) if why == NOT_CONNECTED);
    for (i, state) in now.iter().enumerate() {
        let old = before.map(|b| &b[i]).filter(|s| !waiting(s));
        if waiting(&state) {
            continue;
        }
        match (old, state) {
            (Some(old), new) if old == new => {}
            (_, SourceState::Down(why)) => out.push(Change::SourceDown(NAMES[i], why.clone())),
            (Some(SourceState::Down(_)), SourceState::Up) => out.push(Change::SourceUp(NAMES[i])),
            (_, SourceState::Absent) => out.push(Change::SourceAbsent(NAMES[i])),
            _ => {}
        }
    }
    out
}

/// Every route, rule and unit in drift (units whose state is unknown are not:
/// their source's line says why).
pub(super) fn drift_of(report: &DriftReport) -> BTreeMap<Item, Drift> {
    let mut out = BTreeMap::new();
    for r in report.routes.iter().filter(|r| r.state != RouteState::Present) {
        let e = &r.expected;
        let mut name = format!("{} {}", e.family, e.destination);
        if let Some(gw) = e.gateway {
            name.push_str(&format!(" via {gw}"));
        }
        if let Some(dev) = &e.device {
            name.push_str(&format!(" dev {dev}"));
        }
        name.push_str(&format!(" table {}", crate::publish::text::table_name(e.table)));
        out.insert(Item { kind: "route", name }, drift(r.state.as_str(), &r.reasons));
    }
    for r in report.rules.iter().filter(|r| r.state != RuleState::Present) {
        let e = &r.expected;
        let priority = e.priority.map(|p| format!("{p}: ")).unwrap_or_default();
        let name = format!("{} {priority}{} {}", e.family, e.selector, e.action);
        out.insert(Item { kind: "rule", name }, drift(r.state.as_str(), &r.reasons));
    }
    for u in &report.units {
        if u.state == UnitState::Ok || !u.state.is_known() {
            continue;
        }
        let why = [u.active_state.as_ref().map(|a| a.as_str()), u.result.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        let item = Item {
            kind: "unit",
            name: u.name.to_string(),
        };
        let d = Drift {
            state: u.state.as_str(),
            reasons: String::new(),
            why,
        };
        out.insert(item, d);
    }
    out
}

fn drift(state: &'static str, reasons: &crate::compare::Reasons) -> Drift {
    let codes: Vec<&str> = reasons.0.iter().map(|r| r.kind.code()).collect();
    let words: Vec<&str> = reasons.0.iter().map(|r| r.text.as_str()).collect();
    Drift {
        state,
        reasons: codes.join(","),
        why: words.join("; "),
    }
}

/// What a source being down means for what is watched.
fn consequence(source: &str) -> &'static str {
    match source {
        "netlink" => {
            "the routing table or rules cannot be read: routes and rules are not checked until it is back"
        }
        "systemd" => "units are unknown until it is back; routes are still checked",
        _ => "its last routes stay expected; reasons from its view are not given until it is back",
    }
}

fn emit(changes: Vec<Change>) {
    let mut said: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for change in changes {
        let (kind, how) = match &change {
            Change::Started(i, _) => (i.kind, "started"),
            Change::Changed(i, _) => (i.kind, "changed"),
            Change::Stopped(i) => (i.kind, "stopped"),
            _ => ("source", ""),
        };
        let n = said.entry((kind, how)).or_default();
        *n += 1;
        if *n > MOST {
            continue;
        }
        line(&change);
    }
    for ((kind, how), n) in said.into_iter().filter(|(_, n)| *n > MOST) {
        tracing::warn!(
            kind,
            more = n - MOST,
            "and more {how} drifting than are logged one by one (see /drift)"
        );
    }
}

fn line(change: &Change) {
    match change {
        Change::SourceDown(source, why) => {
            tracing::warn!(source, reason = %why, effect = consequence(source), "source down")
        }
        Change::SourceUp(source) => tracing::info!(source, "source up"),
        Change::SourceAbsent(source) => tracing::info!(
            source,
            "source absent: {} is not installed on this node, and that is no fault",
            if *source == "networkmanager" {
                "NetworkManager"
            } else {
                source
            }
        ),
        Change::Started(item, d) => tracing::warn!(
            kind = item.kind, what = %item.name, state = d.state, reasons = %d.reasons, why = %d.why,
            "drift started"
        ),
        Change::Changed(item, d) => tracing::warn!(
            kind = item.kind, what = %item.name, state = d.state, reasons = %d.reasons, why = %d.why,
            "drift changed"
        ),
        Change::Stopped(item) => tracing::info!(kind = item.kind, what = %item.name, "drift ended"),
    }
}

#[cfg(test)]
#[path = "report_log_tests.rs"]
mod tests;
