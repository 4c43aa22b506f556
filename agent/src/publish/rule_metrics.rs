//! Publish stage: the policy-routing rule series, rendered at scrape time from
//! the latest snapshot like the route series (`metrics.rs`): one per expected
//! rule, so they follow the intent and a rule that left it disappears.
//!
//! Labels: `family`, `priority` (empty when the declaration names none),
//! `selector` (the canonical text, `all` for a rule matching every packet) and
//! `table` (empty for actions that look up no table: `blackhole`, `goto`...).
//! Two expected rules with the same labels (declared twice) are one series:
//! present only when both are, with the reasons of both.

use prometheus_client::encoding::EncodeLabelSet;

use super::metrics::{gauge, plain_gauge, series, Enc, EncodeLabelSetDyn, ReasonLabel};
use crate::compare::{DriftReport, RuleState, RuleVerdict};

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    family: &'static str,
    priority: String,
    selector: String,
    table: String,
}

fn labels(v: &RuleVerdict) -> RuleLabels {
    let e = &v.expected;
    RuleLabels {
        family: e.family.as_str(),
        priority: e.priority.map(|p| p.to_string()).unwrap_or_default(),
        selector: e.selector.to_string(),
        table: v.table.map(|t| t.to_string()).unwrap_or_default(),
    }
}

/// One series per label set: present when every rule with it is, and the
/// reasons of all of them, in the order first seen.
fn merged(report: &DriftReport) -> Vec<(RuleLabels, i64, Vec<&'static str>)> {
    let mut out: Vec<(RuleLabels, i64, Vec<&'static str>)> = Vec::new();
    for v in &report.rules {
        let l = labels(v);
        let at = match out.iter().position(|(seen, _, _)| *seen == l) {
            Some(at) => at,
            None => {
                out.push((l, 1, Vec::new()));
                out.len() - 1
            }
        };
        let (_, present, reasons) = &mut out[at];
        *present = (*present).min(i64::from(v.state == RuleState::Present));
        for code in v.reasons.0.iter().map(|r| r.kind.code()) {
            if !reasons.contains(&code) {
                reasons.push(code);
            }
        }
    }
    out
}

/// `routewarden_rule_present`, `routewarden_rule_drift_reason`,
/// `routewarden_rules{state}` and `routewarden_expected_rules`.
pub(super) fn encode_rules(enc: &mut Enc<'_>, report: &DriftReport) -> std::fmt::Result {
    let merged = merged(report);
    let present: Vec<(&dyn EncodeLabelSetDyn, i64)> = merged
        .iter()
        .map(|(l, v, _)| (l as &dyn EncodeLabelSetDyn, *v))
        .collect();
    gauge(
        enc,
        "routewarden_rule_present",
        "1 when the expected policy-routing rule is in the kernel as declared.",
        &present,
    )?;
    let reasons: Vec<((RuleLabels, ReasonLabel), i64)> = merged
        .iter()
        .flat_map(|(l, _, codes)| {
            codes
                .iter()
                .map(move |&reason| ((l.clone(), ReasonLabel { reason }), 1))
        })
        .collect();
    gauge(
        enc,
        "routewarden_rule_drift_reason",
        "1 for each reason an expected policy-routing rule is not present.",
        &series(&reasons),
    )?;
    encode_counts(enc, report)
}

fn encode_counts(enc: &mut Enc<'_>, report: &DriftReport) -> std::fmt::Result {
    let counts: Vec<([(&str, &str); 1], i64)> = RuleState::ALL
        .iter()
        .map(|s| {
            let n = report.rules.iter().filter(|r| r.state == *s).count();
            ([("state", s.as_str())], i64::try_from(n).unwrap_or(i64::MAX))
        })
        .collect();
    gauge(
        enc,
        "routewarden_rules",
        "Expected policy-routing rules by state.",
        &series(&counts),
    )?;
    plain_gauge(
        enc,
        "routewarden_expected_rules",
        "Policy-routing rules the intent declares.",
        report.rules.len() as f64,
    )
}
