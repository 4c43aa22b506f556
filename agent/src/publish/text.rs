//! Publish stage: plain-text tables for a person at a terminal on a node.

use std::fmt::Write;

use crate::model::{Diagnostic, ExpectedRoute, ExpectedRule, Intent, Severity, Source};

/// A table with aligned columns; the last column is never padded.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
    /// Lines printed under a row (notes, reasons), indented.
    details: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub fn new(header: &[&str]) -> Table {
        let mut t = Table::default();
        t.row(header.iter().map(|h| (*h).to_owned()).collect());
        t
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
        self.details.push(Vec::new());
    }

    /// Add a line under the last row.
    pub fn detail(&mut self, line: String) {
        if let Some(d) = self.details.last_mut() {
            d.push(line);
        }
    }

    /// Render, with `paint` applied to each cell of data rows (for colour).
    pub fn render(&self, paint: &dyn Fn(usize, &str) -> String) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (i, (row, details)) in self.rows.iter().zip(&self.details).enumerate() {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = if c + 1 == row.len() {
                    0
                } else {
                    widths[c] - cell.chars().count() + 2
                };
                let shown = if i == 0 { cell.clone() } else { paint(c, cell) };
                let _ = write!(line, "{shown}{}", " ".repeat(pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
            for d in details {
                let _ = writeln!(out, "    {d}");
            }
        }
        out
    }
}

/// A table as `ip route` names it: `main` (254), `local` (255), `default`
/// (253), else its number.
pub fn table_name(table: u32) -> String {
    match table {
        254 => "main".into(),
        255 => "local".into(),
        253 => "default".into(),
        n => n.to_string(),
    }
}

/// `-` for an absent value.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
}

/// The source column of a route.
pub fn source(r: &ExpectedRoute) -> String {
    source_text(&r.source)
}

/// `kind: origin`, as in the source column.
pub fn source_text(source: &Source) -> String {
    let kind = serde_json::to_value(source.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{kind}: {}", source.origin)
}

/// The expected routing rules, as a table under its count.
pub fn expected_rules(rules: &[ExpectedRule]) -> String {
    let mut out = format!("\nExpected rules: {}\n", rules.len());
    let mut t = Table::new(&["FAMILY", "PRIORITY", "SELECTOR", "ACTION", "SOURCE"]);
    for r in rules {
        t.row(vec![
            r.family.to_string(),
            opt(r.priority),
            r.selector.to_string(),
            r.action.to_string(),
            source_text(&r.source),
        ]);
        r.notes.iter().for_each(|n| t.detail(format!("note: {n}")));
    }
    out.push_str(&t.render(&|_, s| s.to_owned()));
    out
}

/// `routewarden expected` as text.
pub fn expected(intent: &Intent) -> String {
    let mut out = format!(
        "MachineConfig: {}\n\n",
        intent.machineconfig.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(out, "Expected routes: {}", intent.routes.len());
    let mut t = Table::new(&[
        "FAMILY",
        "DESTINATION",
        "GATEWAY",
        "DEVICE",
        "TABLE",
        "METRIC",
        "SOURCE",
    ]);
    for r in &intent.routes {
        t.row(vec![
            r.family.to_string(),
            r.destination.to_string(),
            opt(r.gateway),
            opt(r.device.as_ref()),
            r.table.to_string(),
            opt(r.metric),
            source(r),
        ]);
        for also in r.sources.iter().skip(1) {
            t.detail(format!("also declared: {}", source_text(also)));
        }
        r.notes.iter().for_each(|n| t.detail(format!("note: {n}")));
    }
    out.push_str(&t.render(&|_, s| s.to_owned()));
    out.push_str(&expected_rules(&intent.rules));
    out.push_str(&not_expected(intent));
    let _ = writeln!(out, "\nExpected units: {}", intent.units.len());
    let mut t = Table::new(&["UNIT", "ENABLED", "EXPECT"]);
    for u in &intent.units {
        let enabled = match u.enabled {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let expect = serde_json::to_value(u.expect)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        t.row(vec![
            u.name.to_string(),
            enabled.to_owned(),
            expect.unwrap_or_default(),
        ]);
    }
    out.push_str(&t.render(&|_, s| s.to_owned()));
    out.push_str(&diagnostics(&intent.diagnostics));
    out
}

/// NetworkManager profiles with routes that are not expected (empty when none).
fn not_expected(intent: &Intent) -> String {
    if intent.not_expected.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nNetworkManager profiles not expected: {}\n",
        intent.not_expected.len()
    );
    for n in &intent.not_expected {
        let _ = writeln!(out, "  {}: {}", n.connection, n.why);
    }
    out
}

/// The diagnostics section (empty when there are none).
pub fn diagnostics(diags: &[Diagnostic]) -> String {
    if diags.is_empty() {
        return String::new();
    }
    let mut out = format!("\nDiagnostics: {}\n", diags.len());
    for d in diags {
        let sev = match d.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        let _ = writeln!(out, "  {sev}: {}: {}", d.origin, d.message);
    }
    out
}

/// Colours for a terminal; none when output is not a terminal or `NO_COLOR` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Plain text.
    Off,
    /// ANSI colours.
    On,
}

impl Colour {
    /// On when stdout is a terminal and `NO_COLOR` is unset.
    pub fn detect() -> Colour {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            Colour::On
        } else {
            Colour::Off
        }
    }

    pub(super) fn paint(self, word: &str) -> String {
        let code = match word {
            "present" | "ok" | "up" | "active" => "32",
            "missing" | "failed" | "not-found" => "31",
            "mismatched" | "unselected" | "not-run" | "inactive" | "disabled" => "33",
            "unknown" | "skipped" | "absent" => "2",
            _ => return word.to_owned(),
        };
        match self {
            Colour::On => format!("\x1b[{code}m{word}\x1b[0m"),
            Colour::Off => word.to_owned(),
        }
    }
}

/// `routewarden check` as text.
pub fn check(report: &crate::compare::DriftReport, colour: Colour) -> String {
    let mc = report.machineconfig.as_deref().unwrap_or("(none)");
    let verdict = if report.drift { "DRIFT" } else { "no drift" };
    let mut out = format!("MachineConfig: {mc}\n");
    out.push_str(&file_lines(report));
    let _ = writeln!(out, "Result: {verdict}");
    let s = &report.sources;
    let src = |st: &crate::compare::SourceState| {
        let text = serde_json::to_value(st)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let (word, rest) = text
            .split_once(':')
            .map(|(w, r)| (w.to_owned(), format!(":{r}")))
            .unwrap_or((text, String::new()));
        format!("{}{rest}", colour.paint(&word))
    };
    let _ = writeln!(
        out,
        "Sources: machineconfig {}, netlink {}, systemd {}, networkmanager {}\n",
        src(&s.machineconfig),
        src(&s.netlink),
        src(&s.systemd),
        src(&s.networkmanager)
    );
    out.push_str(&check_routes(report, colour));
    out.push('\n');
    out.push_str(&super::rule_text::check_rules(report, colour));
    out.push('\n');
    out.push_str(&check_units(report, colour));
    out.push_str(&check_connections(report, colour));
    out.push_str(&diagnostics(&report.diagnostics));
    out
}

/// `File:` (which file was read, when it was written) and `Image:` (layered
/// nodes); nothing when no file was read.
fn file_lines(report: &crate::compare::DriftReport) -> String {
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

fn check_routes(report: &crate::compare::DriftReport, colour: Colour) -> String {
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
            r.table.to_string(),
            opt(r.metric),
            if found.is_empty() {
                "-".to_owned()
            } else {
                found.join("; ")
            },
        ]);
        for declared in &r.sources {
            t.detail(format!("declared: {}", source_text(declared)));
        }
        v.reasons
            .0
            .iter()
            .for_each(|why| t.detail(format!("why: {}", why.text)));
    }
    let mut out = format!("Routes: {}\n", report.routes.len());
    out.push_str(&t.render(&|c, s| if c == 0 { colour.paint(s) } else { s.to_owned() }));
    out
}

/// The NetworkManager profiles whose routes are expected (empty when none).
fn check_connections(report: &crate::compare::DriftReport, colour: Colour) -> String {
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

fn check_units(report: &crate::compare::DriftReport, colour: Colour) -> String {
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
        if let Some(why) = &u.unknown_reason {
            t.detail(format!("why: {why}"));
        }
    }
    let mut out = format!("Units: {}\n", report.units.len());
    out.push_str(&t.render(&|c, s| if c == 0 { colour.paint(s) } else { s.to_owned() }));
    out
}
