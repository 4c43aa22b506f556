//! Publish stage: plain-text tables for a person at a terminal on a node.

use std::fmt::Write;

use crate::model::{Diagnostic, ExpectedRoute, Intent, Severity};

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

/// `-` for an absent value.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
}

/// The source column of a route.
pub fn source(r: &ExpectedRoute) -> String {
    let kind = serde_json::to_value(r.source.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{kind}: {}", r.source.origin)
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
        r.notes.iter().for_each(|n| t.detail(format!("note: {n}")));
    }
    out.push_str(&t.render(&|_, s| s.to_owned()));
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
