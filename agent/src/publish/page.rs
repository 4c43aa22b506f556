//! Publish stage: the status page, `GET /`. One small HTML document for a person
//! who reaches the agent (`oc port-forward`, a browser on the node): what `check`
//! shows (the MachineConfig and the sources, each route, rule and unit with its
//! state and reasons, the diagnostics), when the last evaluation finished, and
//! links to `/metrics` and `/drift`.
//!
//! It is rendered from the JSON form of the latest [`Snapshot`]'s report (what
//! `/drift` serves without its envelope: the time of the evaluation comes from
//! the snapshot), generically: every list of records becomes a table
//! whose columns are the records' fields (the usual ones first, in [`FIRST`]
//! order, any other after them), every other field a line of the summary. A field
//! added to the report shows without work here. No script, no asset from
//! elsewhere (it works through a port-forward), a meta refresh every
//! [`REFRESH_SECONDS`]; every value is escaped, so a name from the node is shown as
//! text. A request costs one serialization of the report, like `/drift`; nothing
//! is asked of the node.

use std::fmt::Write;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::metrics::Snapshot;

/// How often the page reloads itself.
pub const REFRESH_SECONDS: u32 = 5;

/// Columns shown first, in this order, when a record has them.
const FIRST: &str = "state active severity name connection id family destination priority selector action gateway device \
                     table metric type observed reasons remediation expect active_state sub_state result exec_main_status \
                     unit_file_state enabled";

/// Columns shown last, in this order (provenance and notes).
const LAST: &str = "source sources origin message notes unknown_reason";

/// Lists shown first, in this order; other lists follow by name, diagnostics last.
const SECTIONS: &[&str] = &["routes", "rules", "units", "connections"];

/// States the style colours (green, red, amber, grey): `page.css`.
const STATE_WORDS: &str = "present ok up no-drift missing failed not-found down DRIFT error mismatched \
                           not-run inactive disabled warning unknown skipped absent";

/// Words inside a record shown as `ip route` shows them.
const WORDS: &[(&str, &str)] = &[("gateway", "via"), ("device", "dev"), ("protocol", "proto")];

/// The page for the latest snapshot, or a page that says none exists yet.
pub fn render(snapshot: Option<&Snapshot>, now: SystemTime) -> String {
    let Some(snap) = snapshot else {
        return document(
            "routewarden: starting",
            "<p>The first evaluation is not done yet.</p>\n",
        );
    };
    match serde_json::to_value(&snap.report) {
        Ok(report) => render_report(&report, snap.at, now),
        Err(e) => document(
            "routewarden: error",
            &format!(
                "<p>The report could not be shown: {}</p>\n",
                escape(&e.to_string())
            ),
        ),
    }
}

/// The page for a report in its JSON form (what `/drift` serves).
pub fn render_report(report: &Value, at: SystemTime, now: SystemTime) -> String {
    let empty = Map::new();
    let fields = report.as_object().unwrap_or(&empty);
    let verdict = match fields.get("drift") {
        Some(Value::Bool(true)) => "DRIFT",
        Some(Value::Bool(false)) => "no drift",
        _ => "unknown",
    };
    let mc = fields
        .get("machineconfig")
        .and_then(Value::as_str)
        .unwrap_or("(none)");
    let mut body = format!(
        "<h1>routewarden <span id=\"verdict\"{}>{verdict}</span></h1>\n",
        state_class(&verdict.replace(' ', "-"))
    );
    body.push_str(&meta(at, now));
    body.push_str(&summary(fields));
    for key in section_order(fields) {
        if let Some(Value::Array(rows)) = fields.get(&key) {
            body.push_str(&section(&key, rows));
        }
    }
    document(&format!("routewarden: {verdict}: {mc}"), &body)
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

const STYLE: &str = include_str!("page.css");

/// When the report was made, and the links.
fn meta(at: SystemTime, now: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    let age = now
        .duration_since(at)
        .map(|d| format!("{} s ago", d.as_secs()))
        .unwrap_or_else(|_| "just now".to_owned());
    format!(
        "<p class=\"meta\">Last evaluation <time id=\"evaluated\" datetime=\"{stamp}\">{stamp}</time> \
         ({age}); this page reloads every {REFRESH_SECONDS} s. \
         <a href=\"metrics\">/metrics</a> <a href=\"drift\">/drift</a></p>\n"
    )
}

/// Every field that is not a list of records: the MachineConfig, the sources...
fn summary(fields: &Map<String, Value>) -> String {
    let mut out = String::from("<h2>MachineConfig and sources</h2>\n<table id=\"summary\">\n");
    for (key, value) in fields {
        if key == "drift" || is_section(value) {
            continue;
        }
        let shown = match value {
            Value::Object(map) => states(map),
            other => inline(other),
        };
        let _ = writeln!(
            out,
            "<tr data-field=\"{k}\"><th>{}</th><td>{shown}</td></tr>",
            escape(&heading(key)),
            k = escape(key)
        );
    }
    out.push_str("</table>\n");
    out
}

/// An object's fields one a line, each value coloured by its first word
/// (`up`, `down: why`, `skipped`).
fn states(map: &Map<String, Value>) -> String {
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            let text = plain(v);
            format!(
                "<li data-field=\"{k}\">{k}: <span{}>{}</span></li>",
                state_class(&text),
                escape(&text),
                k = escape(k)
            )
        })
        .collect();
    format!("<ul>{}</ul>", items.concat())
}

fn is_section(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().all(Value::is_object),
        _ => false,
    }
}

fn section_order(fields: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = SECTIONS
        .iter()
        .filter(|k| fields.get(**k).is_some_and(is_section))
        .map(|k| (*k).to_owned())
        .collect();
    for (key, value) in fields {
        if is_section(value) && !SECTIONS.contains(&key.as_str()) && key != "diagnostics" {
            keys.push(key.clone());
        }
    }
    if fields.get("diagnostics").is_some_and(is_section) {
        keys.push("diagnostics".to_owned());
    }
    keys
}

/// One list of records as a table, with its count by state in the heading.
fn section(key: &str, rows: &[Value]) -> String {
    let mut out = format!(
        "<h2 id=\"{k}-heading\">{}: {}{}</h2>\n",
        escape(&heading(key)),
        rows.len(),
        state_counts(rows),
        k = escape(key)
    );
    if rows.is_empty() {
        out.push_str("<p class=\"none\">none</p>\n");
        return out;
    }
    let columns = columns(rows);
    let _ = write!(out, "<table id=\"{}\">\n<thead><tr>", escape(key));
    for c in &columns {
        let _ = write!(out, "<th>{}</th>", escape(&heading(c)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str(&table_row(row, &columns));
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn table_row(row: &Value, columns: &[String]) -> String {
    let state = row.get("state").map(plain).unwrap_or_default();
    let mut out = format!("<tr data-state=\"{}\">", escape(&state));
    for c in columns {
        let _ = write!(out, "<td data-field=\"{}\">{}</td>", escape(c), cell(row, c));
    }
    out.push_str("</tr>\n");
    out
}

/// ` (2 present, 1 missing)` when the records have a state.
fn state_counts(rows: &[Value]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for state in rows.iter().filter_map(|r| r.get("state")).map(plain) {
        match counts.iter_mut().find(|(s, _)| *s == state) {
            Some((_, n)) => *n += 1,
            None => counts.push((state, 1)),
        }
    }
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {}", escape(s))).collect();
    format!(" ({})", parts.join(", "))
}

/// The fields of the records, in display order; `reason_codes` goes with `reasons`.
fn columns(rows: &[Value]) -> Vec<String> {
    let mut keys: Vec<&str> = Vec::new();
    for row in rows.iter().filter_map(Value::as_object) {
        for k in row.keys() {
            if !keys.contains(&k.as_str()) && k != "reason_codes" {
                keys.push(k);
            }
        }
    }
    order(keys).into_iter().map(str::to_owned).collect()
}

/// [`FIRST`] ones, then the others by name, then [`LAST`] ones.
fn order(mut keys: Vec<&str>) -> Vec<&str> {
    let place = |list: &str, k: &str| list.split_whitespace().position(|f| f == k);
    let rank = |k: &str| {
        place(FIRST, k)
            .map(|i| (0, i))
            .or_else(|| place(LAST, k).map(|i| (2, i)))
            .unwrap_or((1, 0))
    };
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    keys
}

/// One field of a record.
fn cell(row: &Value, column: &str) -> String {
    let value = row.get(column).unwrap_or(&Value::Null);
    match column {
        "state" | "severity" => {
            let text = plain(value);
            format!("<span{}>{}</span>", state_class(&text), escape(&text))
        }
        "reasons" => reasons(value, row.get("reason_codes")),
        _ => block(value),
    }
}

/// Each reason on its line, after its code when the codes pair with the reasons.
fn reasons(texts: &Value, codes: Option<&Value>) -> String {
    let (Some(texts), Some(codes)) = (texts.as_array(), codes.and_then(Value::as_array)) else {
        return block(texts);
    };
    if texts.len() != codes.len() {
        return block(&Value::Array(texts.clone()));
    }
    if texts.is_empty() {
        return "<span class=\"none\">-</span>".to_owned();
    }
    let items: Vec<String> = texts
        .iter()
        .zip(codes)
        .map(|(t, c)| {
            format!(
                "<li><code>{}</code> {}</li>",
                escape(&plain(c)),
                escape(&plain(t))
            )
        })
        .collect();
    format!("<ul>{}</ul>", items.concat())
}

/// A value in a table cell: a list one item a line, anything else inline.
fn block(value: &Value) -> String {
    match value {
        Value::Array(items) if !items.is_empty() => {
            let items: Vec<String> = items.iter().map(|v| format!("<li>{}</li>", inline(v))).collect();
            format!("<ul>{}</ul>", items.concat())
        }
        other => inline(other),
    }
}

/// A value on one line: `-` for nothing, a record as `kind: origin` and
/// `word value` pairs (`via 172.18.0.1 dev ens5 metric 100`).
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "<span class=\"none\">-</span>".to_owned(),
        Value::Array(items) if items.is_empty() => "<span class=\"none\">-</span>".to_owned(),
        Value::Array(items) => items.iter().map(inline).collect::<Vec<_>>().join("; "),
        Value::Object(map) => escape(&record(map)),
        other => escape(&plain(other)),
    }
}

/// A record as plain words; a field its origin already names is left out (a
/// source's unit).
fn record(map: &Map<String, Value>) -> String {
    let origin = map.get("origin").map(plain).unwrap_or_default();
    let mut text = match map.get("kind") {
        Some(kind) if !origin.is_empty() => format!("{}: {origin}", plain(kind)),
        _ => String::new(),
    };
    let keys = order(map.keys().map(String::as_str).collect());
    for key in keys.into_iter().filter(|k| *k != "kind" && *k != "origin") {
        let value = &map[key];
        if value.is_null() || value.as_array().is_some_and(Vec::is_empty) {
            continue;
        }
        let shown = plain(value);
        if !origin.is_empty() && origin.contains(&shown) {
            continue;
        }
        let word = WORDS.iter().find(|(k, _)| *k == key).map_or(key, |(_, w)| w);
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "{word} {shown}");
    }
    text
}

/// A value as unescaped text.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(map) => record(map),
    }
}

/// `active_state` -> `Active state`, with the names people know spelled their way.
fn heading(key: &str) -> String {
    let text = key
        .replace('_', " ")
        .replace("machineconfig", "MachineConfig")
        .replace("networkmanager", "NetworkManager")
        .replace("observed", "found");
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// ` class="s-WORD"` when the first word of a state (`down: why` -> `down`) is
/// one the style colours, else nothing.
fn state_class(text: &str) -> String {
    let word = text.split([':', ' ']).next().unwrap_or_default();
    if !word.is_empty() && STATE_WORDS.split_whitespace().any(|w| w == word) {
        format!(" class=\"s-{word}\"")
    } else {
        String::new()
    }
}

/// Text made safe for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
