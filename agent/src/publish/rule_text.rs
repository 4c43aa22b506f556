//! Publish stage: the `Rules` section of `routewarden check` as text, shaped
//! like the routes' section: one row per expected rule, where it was declared
//! and why it is not present under it.

use super::text::{opt, table_name, Colour, Table};
use crate::compare::DriftReport;

/// `Rules: N` and its table (only the count when the intent declares none, as
/// on most nodes).
pub(super) fn check_rules(report: &DriftReport, colour: Colour) -> String {
    if report.rules.is_empty() {
        return "Rules: 0\n".to_owned();
    }
    let mut t = Table::new(&[
        "STATE", "FAMILY", "PRIORITY", "SELECTOR", "TABLE", "ACTION", "FOUND",
    ]);
    for v in &report.rules {
        let r = &v.expected;
        let found: Vec<String> = v.observed.iter().map(|k| k.describe()).collect();
        t.row(vec![
            v.state.as_str().to_owned(),
            r.family.to_string(),
            opt(r.priority),
            r.selector.to_string(),
            opt(v.table.map(table_name)),
            r.action.to_string(),
            if found.is_empty() {
                "-".to_owned()
            } else {
                found.join("; ")
            },
        ]);
        t.explain(&r.sources, &r.notes, &v.reasons);
    }
    let mut out = format!("Rules: {}\n", report.rules.len());
    out.push_str(&t.render(&|c, s| if c == 0 { colour.paint(s) } else { s.to_owned() }));
    out
}
