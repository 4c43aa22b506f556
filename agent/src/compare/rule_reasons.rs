//! Compare stage: why an expected rule is not present, from the same fixed set
//! of reasons as routes ([`ReasonKind`]) and in the same precedence: another rule
//! in its place, the unit that adds it, NetworkManager not running, a keyfile
//! NetworkManager refuses; then, for a rule NetworkManager keeps, what its view
//! says (`facts.rs`: the profile not loaded or not active, the applied connection
//! lacking it, or holding it while the kernel does not), which replaces the
//! inference below; a non-persistent declaration, and `unexplained` when nothing
//! applies.

use super::reasons::{keyfile_mode, networkmanager, reason, unit_reason, Reason, ReasonKind};
use super::rules::RuleState;
use super::{facts, Observed, UnitVerdict, UnitsSeen};
use crate::model::{ExpectedRule, Manager, ObservedRule, SourceKind};

/// Every reason that applies to a rule that is not present.
pub(super) fn explain(
    r: &ExpectedRule,
    state: RuleState,
    observed: &[ObservedRule],
    seen: Observed<'_>,
    units: &[UnitVerdict],
) -> Vec<Reason> {
    let mut out = Vec::new();
    if state == RuleState::Mismatched {
        out.push(different_rule(observed));
    }
    let asked = !matches!(seen.units, UnitsSeen::Skipped);
    if let Some(name) = r.source.unit.as_ref().filter(|_| asked) {
        out.extend(unit_reason(name, units));
    }
    if r.traits.manager != Manager::None {
        out.extend(networkmanager(units, "rule"));
    }
    out.extend(keyfile_mode(&r.traits));
    // NetworkManager's view replaces the inference below where it answers,
    // unless something above explains it already (as for routes).
    if out.iter().all(|x| x.kind == ReasonKind::DifferentRule) {
        out.extend(facts::explain_rule(r, seen, units));
    }
    if out.is_empty() {
        out.push(nothing_else(r));
    }
    out
}

fn different_rule(observed: &[ObservedRule]) -> Reason {
    let found: Vec<String> = observed.iter().map(ObservedRule::describe).collect();
    reason(
        ReasonKind::DifferentRule,
        format!(
            "a rule is in its place (its priority, or its selectors), but not this one: {}",
            found.join("; ")
        ),
    )
}

/// The unit ran fine (or there is none) and NetworkManager is up.
fn nothing_else(r: &ExpectedRule) -> Reason {
    let text = match (r.traits.non_persistent, r.source.kind, &r.source.unit) {
        (true, SourceKind::Nmcli, _) => "declared with non-persistent nmcli device modify: lost when the device is re-activated or the rule is deleted, and nothing adds it again",
        (true, _, _) => "declared with ip rule, which nothing keeps in place: once the rule is deleted (ip rule del, or another program) nothing adds it again until the command runs again",
        (false, _, None) => "nothing on the node explains it: the file that declares it may not be applied yet (NetworkManager reads it on reload or when its connection is activated), or the rule was deleted since",
        (false, _, Some(_)) => "nothing on the node explains it: the rule was removed after it was installed (for example with ip rule del)",
    };
    let kind = match r.traits.non_persistent {
        true => ReasonKind::NonPersistent,
        false => ReasonKind::Unexplained,
    };
    reason(kind, text.to_owned())
}
