//! Compare stage (pure): expected policy-routing rules against the kernel's, and
//! the expected routes in a table no kernel rule looks up.
//!
//! An expected rule is
//! - **present** when a kernel rule of its family has the same selector (every
//!   part the model holds: `from`, `to`, `iif`, `oif`, `fwmark`/mask, `tos`,
//!   `ipproto`, ports, `suppress_prefixlength`, `not`), the same action (the
//!   same table), and the same priority when the declaration names one. The
//!   selectors the intent notes as not checked (`uidrange`, `realms`, `tun_id`,
//!   `suppress_ifgroup`) are not compared;
//! - **mismatched** when none is, but a kernel rule is in its place: at the
//!   declared priority, or with its selector (at another priority, or pointing
//!   elsewhere). A kernel rule that is another expected rule is not in its place
//!   (two declarations may share a priority), nor is a default rule (`0` local,
//!   `32766` main, `32767` default) unless it sits at the declared priority;
//! - **missing** otherwise.
//!
//! `observed` lists the kernel rules that decided: the matching ones and those in
//! its place, so a missing rule has none.
//!
//! A kernel rule *selects* table T when its action is `table T`, whatever its
//! selectors (`not`, `suppress_prefixlength` included) and priority. `goto` and
//! `nop` select no table themselves (a `goto` lands on rules counted on their
//! own). An `l3mdev` rule looks up the table of a VRF device, which is not read
//! here: it counts as selecting every table of its family. Main, local and
//! default are never reported unselected (the kernel's default rules). An
//! expected route in any other table that no kernel rule selects gets the reason
//! `no-rule-selects-table` and is drift whatever its table holds: a route found
//! there is [`RouteState::Unselected`], a missing or mismatched one keeps its
//! state and gains the reason.
//!
//! Cost: O(expected rules^2 x kernel rules) per evaluation, tens of each; the
//! routes' check is one set lookup each.

use std::collections::BTreeSet;

use serde::Serialize;

use super::reasons::{reason, Reason, ReasonKind, Reasons};
use super::{rule_reasons, Observed, RouteState, RouteVerdict, UnitVerdict};
use crate::model::{
    ExpectedRule, Family, Intent, ObservedRule, RuleAction, RuleSelector, TABLE_DEFAULT, TABLE_LOCAL,
    TABLE_MAIN,
};

/// Rule verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    /// In the kernel as declared.
    Present,
    /// Not in the kernel, and nothing in its place.
    Missing,
    /// Another rule is in its place (its priority, or its selector).
    Mismatched,
}

impl RuleState {
    /// Every state, in label order.
    pub const ALL: [RuleState; 3] = [RuleState::Present, RuleState::Missing, RuleState::Mismatched];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Present => "present",
            RuleState::Missing => "missing",
            RuleState::Mismatched => "mismatched",
        }
    }
}

/// The verdict on one expected rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleVerdict {
    /// The expectation (`family`, `priority`, `selector`, `action`, `source`,
    /// `notes` in JSON).
    #[serde(flatten)]
    pub expected: ExpectedRule,
    /// The table its action looks up (none for `blackhole`, `goto`...).
    pub table: Option<u32>,
    /// Present, missing or mismatched.
    pub state: RuleState,
    /// The kernel rules that decided: matching, or in its place.
    pub observed: Vec<ObservedRule>,
    /// Why it is not present (`reasons`, `reason_codes` in JSON).
    #[serde(flatten)]
    pub reasons: Reasons,
}

/// The verdict on every expected rule, in declaration order.
pub(super) fn verdicts(intent: &Intent, seen: Observed<'_>, units: &[UnitVerdict]) -> Vec<RuleVerdict> {
    intent
        .rules
        .iter()
        .map(|e| verdict(e, &intent.rules, seen, units))
        .collect()
}

fn verdict(e: &ExpectedRule, all: &[ExpectedRule], seen: Observed<'_>, units: &[UnitVerdict]) -> RuleVerdict {
    let is_other = |k: &ObservedRule| all.iter().any(|o| !std::ptr::eq(o, e) && matches(o, k));
    let observed: Vec<ObservedRule> = seen
        .rules
        .iter()
        .filter(|k| matches(e, k) || (in_its_place(e, k) && !is_other(k)))
        .cloned()
        .collect();
    let state = match observed.iter().any(|k| matches(e, k)) {
        true => RuleState::Present,
        false if observed.is_empty() => RuleState::Missing,
        false => RuleState::Mismatched,
    };
    let reasons = match state {
        RuleState::Present => Vec::new(),
        _ => rule_reasons::explain(e, state, &observed, seen, units),
    };
    RuleVerdict {
        expected: e.clone(),
        table: e.table(),
        state,
        observed,
        reasons: Reasons(reasons),
    }
}

/// The kernel rule is the expected one.
fn matches(e: &ExpectedRule, k: &ObservedRule) -> bool {
    k.family == e.family
        && !k.l3mdev
        && k.selector == e.selector
        && k.action == e.action
        && e.priority.is_none_or(|p| p == k.priority)
}

/// The kernel rule sits where the expected one should: at its declared
/// priority, or with its selector (a default rule only by priority).
fn in_its_place(e: &ExpectedRule, k: &ObservedRule) -> bool {
    let at_priority = e.priority == Some(k.priority);
    let same_selector = k.selector == e.selector && !is_default(k);
    k.family == e.family && (at_priority || same_selector)
}

/// One of the rules the kernel starts with: `0` local, `32766` main, `32767`
/// default, matching all traffic.
fn is_default(k: &ObservedRule) -> bool {
    let table = match k.priority {
        0 => TABLE_LOCAL,
        32766 => TABLE_MAIN,
        32767 => TABLE_DEFAULT,
        _ => return false,
    };
    k.selector == RuleSelector::default() && k.action == RuleAction::Table(table) && !k.l3mdev
}

/// The tables the kernel's rules look up, by family.
struct Selected {
    tables: BTreeSet<(Family, u32)>,
    /// Families with an `l3mdev` rule (every table counts as selected).
    vrf: BTreeSet<Family>,
}

impl Selected {
    fn new(kernel: &[ObservedRule]) -> Selected {
        Selected {
            tables: kernel
                .iter()
                .filter_map(|k| Some((k.family, k.table()?)))
                .collect(),
            vrf: kernel.iter().filter(|k| k.l3mdev).map(|k| k.family).collect(),
        }
    }

    fn selects(&self, family: Family, table: u32) -> bool {
        matches!(table, TABLE_MAIN | TABLE_LOCAL | TABLE_DEFAULT)
            || self.vrf.contains(&family)
            || self.tables.contains(&(family, table))
    }
}

/// Give every expected route whose table no kernel rule selects the reason
/// `no-rule-selects-table`; a route found in such a table is unselected.
pub(super) fn mark_unselected(routes: &mut [RouteVerdict], kernel: &[ObservedRule]) {
    let selected = Selected::new(kernel);
    for v in routes {
        let (family, table) = (v.expected.family, v.expected.table);
        if selected.selects(family, table) {
            continue;
        }
        v.reasons.0.push(no_rule(family, table, v.state));
        if v.state == RouteState::Present {
            v.state = RouteState::Unselected;
        }
    }
}

fn no_rule(family: Family, table: u32, state: RouteState) -> Reason {
    let found = match state {
        RouteState::Present => format!("the route is in table {table}, but "),
        _ => String::new(),
    };
    reason(
        ReasonKind::NoRuleSelectsTable,
        format!(
            "{found}no {family} routing rule looks up table {table}: its routes carry no traffic, whatever the table holds"
        ),
    )
}
