//! Publish stage: plain-text tables for a person at a terminal on a node.

use std::fmt::Write;

use crate::compare::Reasons;
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

    /// Under the last row, what `check` says of a route or rule: who declared it,
    /// the intent's notes, and why it drifts.
    pub fn explain(&mut self, sources: &[Source], notes: &[String], reasons: &Reasons) {
        for declared in sources {
            self.detail(format!("declared: {}", source_text(declared)));
        }
        notes.iter().for_each(|n| self.detail(format!("note: {n}")));
        for why in &reasons.0 {
            self.detail(format!("why: {}", why.text));
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
    format!("{kind}: {}", place(&source.origin))
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
        for also in r.sources.iter().skip(1) {
            t.detail(format!("also declared: {}", source_text(also)));
        }
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
            table_name(r.table),
            opt(r.metric),
            source(r),
        ]);
        if let Some(hops) = r.describe_hops() {
            t.detail(format!("next hops: {hops}"));
        }
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
    diagnostics_in(diags, Colour::Off)
}

/// The diagnostics section, `error` and `warning` in their colours.
pub fn diagnostics_in(diags: &[Diagnostic], colour: Colour) -> String {
    if diags.is_empty() {
        return String::new();
    }
    let mut out = format!("\nDiagnostics: {}\n", diags.len());
    for d in diags {
        let sev = match d.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        let _ = writeln!(
            out,
            "  {}: {}: {}",
            colour.paint(sev),
            place(&d.origin),
            d.message
        );
    }
    out
}

/// An origin as a person reads it: whose line a line number is (`unit U line
/// 4` is the fourth line of the unit's contents, not of the YAML).
pub fn place(origin: &str) -> String {
    crate::model::Place::parse(origin).describe(origin)
}

/// Colours for a terminal; none when output is not a terminal, `NO_COLOR` is
/// set or `TERM` is `dumb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Plain text.
    Off,
    /// ANSI colours.
    On,
}

impl Colour {
    /// On when stdout is a terminal, `NO_COLOR` is unset (or empty) and
    /// `TERM` is not `dumb`.
    pub fn detect() -> Colour {
        use std::io::IsTerminal;
        Colour::choose(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
    }

    /// The choice [`Colour::detect`] makes, from what it reads.
    pub fn choose(
        terminal: bool,
        no_color: Option<&std::ffi::OsStr>,
        term: Option<&std::ffi::OsStr>,
    ) -> Colour {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        let dumb = term.is_some_and(|t| t == "dumb");
        if terminal && !no_color && !dumb {
            Colour::On
        } else {
            Colour::Off
        }
    }

    /// A state word in its colour (others as they are).
    pub(super) fn paint(self, word: &str) -> String {
        let code = match word {
            "present" | "ok" | "up" | "active" | "no drift" => "32",
            "missing" | "failed" | "not-found" | "DRIFT" | "error" | "down" => "31",
            "mismatched" | "unselected" | "not-run" | "inactive" | "disabled" | "warning" => "33",
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
    super::check_text::check(report, colour)
}
