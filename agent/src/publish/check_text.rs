//! Publish stage: `routewarden check` as text. The verdict and the sources
//! first, then routes, rules, units, connections and diagnostics, and one
//! summary line of counts last. Tables are named as `ip route` names them
//! (`main`, `local`, `default`); a source that was not asked, or could not be,
//! is said once (on the `Sources:` line) rather than in every row.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::text::{diagnostics_in, opt, table_name, Colour, Table};
use crate::compare::{DriftReport, SourceState};
use crate::model::Severity;

/// `routewarden check` as text.
pub fn check(report: &DriftReport, colour: Colour) -> String {
    let mc = report.machineconfig.as_deref().unwrap_or("(none)");
    let verdict = if report.drift { "DRIFT" } else { "no drift" };
    let mut out = format!("MachineConfig: {mc}\n");
    out.push_str(&file_lines(report));
    let _ = writeln!(out, "Result: {}", colour.paint(verdict));
    let s = &report.sources;
    let src = |st: &SourceState| {
        let (word, rest) = match st {
            SourceState::Up => ("up", String::new()),
            SourceState::Down(why) => ("down", format!(": {why}")),
            SourceState::Skipped => ("skipped", String::new()),
            SourceState::Absent => ("absent", String::new()),
        };
        format!("{}{rest}", colour.paint(word))
    };
    // systemd and NetworkManager share the bus: its error is said once.
    let networkmanager = match (&s.systemd, &s.networkmanager) {
        (SourceState::Down(a), SourceState::Down(b)) if a == b => {
            format!("{} (the same)", colour.paint("down"))
        }
        (_, nm) => src(nm),
    };
    let _ = writeln!(
        out,
        "Sources: machineconfig {}, netlink {}, systemd {}, networkmanager {networkmanager}\n",
        src(&s.machineconfig),
        src(&s.netlink),
        src(&s.systemd),
    );
    out.push_str(&routes(report, colour));
    out.push('\n');
    out.push_str(&super::rule_text::check_rules(report, colour));
    out.push('\n');
    out.push_str(&units(report, colour));
    out.push_str(&connections(report, colour));
    out.push_str(&diagnostics_in(&report.diagnostics, colour));
    out.push('\n');
    out.push_str(&summary(report));
    out
}

/// `File:` (which file was read, when it was written) and `Image:` (layered
/// nodes); nothing when no file was read.
fn file_lines(report: &DriftReport) -> String {
    let Some(file) = &report.machineconfig_file else {
        return String::new();
    };
    let when = match report.machineconfig_written_after_boot {
        Some(true) => ", after this boot",
        Some(false) => ", before this boot",
        None => "",
    };
    let mut out = format!("File: {} (written {}{when})\n", file.path, file.written_at());
    if let Some(image) = &file.image {
        let _ = writeln!(out, "Image: {image}");
    }
    out
}

fn routes(report: &DriftReport, colour: Colour) -> String {
    let mut t = Table::new(&[
        "STATE",
        "FAMILY",
        "DESTINATION",
        "GATEWAY",
        "DEVICE",
        "TABLE",
        "METRIC",
        "FOUND",
    ]);
    for v in &report.routes {
        let r = &v.expected;
        let found: Vec<String> = v
            .observed
            .iter()
            .map(|h| {
                let via = h.gateway.map(|g| format!("via {g} ")).unwrap_or_default();
                format!(
                    "{via}dev {} metric {} proto {}",
                    opt(h.device.as_deref()),
                    h.metric.unwrap_or(0),
                    h.protocol
                )
            })
            .collect();
        t.row(vec![
            v.state.as_str().to_owned(),
            r.family.to_string(),
            r.destination.to_string(),
            opt(r.gateway),
            opt(r.device.as_ref()),
            table_name(r.table),
            opt(r.metric),
            if found.is_empty() {
                "-".to_owned()
            } else {
                found.join("; ")
            },
        ]);
        if let Some(hops) = r.describe_hops() {
            t.detail(format!("next hops: {hops}"));
        }
        t.explain(&r.sources, &r.notes, &v.reasons);
        if let Some(last) = v.remediation.as_ref().and_then(|m| m.last_attempt.as_ref()) {
            let error = last
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            t.detail(format!(
                "last remediation: {} {} {} at {}{error}",
                last.action, last.owner, last.result, last.at
            ));
        }
    }
    let mut out = format!("Routes: {}\n", report.routes.len());
    out.push_str(&t.render(&|c, s| if c == 0 { colour.paint(s) } else { s.to_owned() }));
    out
}

/// The NetworkManager profiles whose routes or rules are expected (empty when none).
fn connections(report: &DriftReport, colour: Colour) -> String {
    if report.connections.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&["STATE", "CONNECTION", "DEVICE"]);
    for c in &report.connections {
        let state = match c.active {
            Some(true) => "active",
            Some(false) => "inactive",
            None => "unknown",
        };
        t.row(vec![state.to_owned(), c.connection.clone(), c.device.to_string()]);
    }
    let mut out = format!("\nConnections: {}\n", report.connections.len());
    out.push_str(&t.render(&|c, s| if c == 0 { colour.paint(s) } else { s.to_owned() }));
    out
}

/// The units: a table when systemd told their state; when it was not asked
/// or could not be, one line with their names (the `Sources:` line says why).
fn units(report: &DriftReport, colour: Colour) -> String {
    let n = report.units.len();
    if n > 0 && report.units.iter().all(|u| !u.state.is_known()) {
        let names: Vec<&str> = report.units.iter().map(|u| u.name.as_str()).collect();
        let (word, why) = match &report.sources.systemd {
            SourceState::Skipped => ("skipped", "not asked (--no-units)"),
            _ => ("unknown", "systemd could not be asked, see Sources"),
        };
        return format!(
            "Units: {n}, {} ({why}): {}\n",
            colour.paint(word),
            names.join(", ")
        );
    }
    let source_why = match &report.sources.systemd {
        SourceState::Down(why) => Some(why.as_str()),
        _ => None,
    };
    let mut t = Table::new(&["STATE", "UNIT", "ACTIVE", "SUB", "RESULT", "STATUS", "FILE"]);
    for u in &report.units {
        t.row(vec![
            u.state.as_str().to_owned(),
            u.name.to_string(),
            opt(u.active_state.as_ref().map(|a| a.as_str())),
            opt(u.sub_state.as_deref()),
            opt(u.result.as_deref()),
            opt(u.exec_main_status),
            opt(u.unit_file_state.as_deref().filter(|s| !s.is_empty())),
        ]);
        if let Some(why) = u.unknown_reason.as_deref().filter(|w| Some(*w) != source_why) {
            t.detail(format!("why: {why}"));
        }
    }
    let mut out = format!("Units: {n}\n");
    out.push_str(&t.render(&|c, s| if c == 0 { colour.paint(s) } else { s.to_owned() }));
    out
}

/// `Summary: 3 routes (1 present, 2 missing), 0 rules, 2 units (2 ok), 1
/// diagnostic (1 error)`: each count, and its states that occur.
pub fn summary(report: &DriftReport) -> String {
    let routes = counts(report.routes.iter().map(|r| r.state.as_str()));
    let rules = counts(report.rules.iter().map(|r| r.state.as_str()));
    let units = counts(report.units.iter().map(|u| u.state.as_str()));
    let diags = counts(report.diagnostics.iter().map(|d| match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }));
    format!(
        "Summary: {}, {}, {}, {}\n",
        counted(report.routes.len(), "route", &routes),
        counted(report.rules.len(), "rule", &rules),
        counted(report.units.len(), "unit", &units),
        counted(report.diagnostics.len(), "diagnostic", &diags),
    )
}

fn counts<'a>(states: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut out = BTreeMap::new();
    for s in states {
        *out.entry(s).or_insert(0) += 1;
    }
    out
}

fn counted(n: usize, what: &str, by: &BTreeMap<&str, usize>) -> String {
    let plural = |n: usize, w: &str| match (n, w) {
        (1, w) => w.to_owned(),
        (_, "error") => "errors".to_owned(),
        (_, "warning") => "warnings".to_owned(),
        (_, w) => w.to_owned(),
    };
    let head = format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    if by.is_empty() {
        return head;
    }
    let parts: Vec<String> = by.iter().map(|(s, k)| format!("{k} {}", plural(*k, s))).collect();
    format!("{head} ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_words() {
        let by = counts(["missing", "present", "missing"].into_iter());
        assert_eq!(counted(3, "route", &by), "3 routes (2 missing, 1 present)");
        assert_eq!(counted(0, "rule", &BTreeMap::new()), "0 rules");
        let by = counts(["error", "warning", "error"].into_iter());
        assert_eq!(
            counted(3, "diagnostic", &by),
            "3 diagnostics (2 errors, 1 warning)"
        );
    }

    #[test]
    fn colour_is_for_terminals_that_want_it() {
        use std::ffi::OsStr;
        assert_eq!(Colour::choose(true, None, Some(OsStr::new("xterm"))), Colour::On);
        assert_eq!(Colour::choose(false, None, None), Colour::Off);
        assert_eq!(Colour::choose(true, Some(OsStr::new("1")), None), Colour::Off);
        assert_eq!(
            Colour::choose(true, Some(OsStr::new("")), None),
            Colour::On,
            "NO_COLOR empty is unset"
        );
        assert_eq!(Colour::choose(true, None, Some(OsStr::new("dumb"))), Colour::Off);
        assert_eq!(Colour::On.paint("DRIFT"), "\x1b[31mDRIFT\x1b[0m");
        assert_eq!(Colour::Off.paint("DRIFT"), "DRIFT");
    }
}
