//! `lint` output: text for people, JSON for tools, GitHub workflow annotations,
//! and SARIF 2.1.0 (one rule per ID) for code-scanning dashboards.

use std::fmt::Write;

use serde_json::{json, Value};

use super::{Report, RULES};

/// Where each rule's page is, relative to the repository.
pub fn doc_path(id: &str) -> String {
    format!("docs/lint/{id}.md")
}

/// `FILE:LINE: LEVEL RWnnn [pool P] message`, then a summary line.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let pool = f
            .pool
            .as_deref()
            .map(|p| format!(" [pool {p}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}:{}: {} {}{pool} {}",
            f.file,
            f.line,
            f.level.as_str(),
            f.rule,
            f.message
        );
    }
    let errors = report.at_least(super::Level::Error);
    let _ = writeln!(
        out,
        "{} findings ({errors} errors, {} warnings) in {} files; pools: {}; {} documents skipped",
        report.findings.len(),
        report.findings.len() - errors,
        report.files,
        report.pools.join(", "),
        report.skipped
    );
    out
}

/// The report as JSON.
pub fn json(report: &Report) -> String {
    crate::publish::json(report)
}

/// One `::warning file=F,line=L,title=RWnnn::message` line per finding.
pub fn github(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let pool = f
            .pool
            .as_deref()
            .map(|p| format!(" (pool {p})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "::{} file={},line={},title={}::{}{pool}",
            f.level.as_str(),
            property(&f.file),
            f.line,
            f.rule,
            data(&f.message)
        );
    }
    out
}

/// GitHub's escaping of a message.
fn data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// GitHub's escaping of a property value.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

/// SARIF 2.1.0: one run, every rule in the driver, one result per finding.
pub fn sarif(report: &Report) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.summary},
                "help": {"text": format!("See {} in the routewarden repository.", doc_path(r.id))},
                "defaultConfiguration": {"level": r.level.as_str()},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": f.level.as_str(),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.file)},
                        "region": {"startLine": f.line},
                    }
                }],
            });
            if let Some(pool) = &f.pool {
                result["properties"] = json!({ "pool": pool });
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "routewarden",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    crate::publish::json(&log)
}

/// A relative URI for a path (`./a b.yaml` -> `a%20b.yaml`); stdin is `stdin`.
fn uri(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    if path == "-" {
        return "stdin".to_owned();
    }
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(property("x:y,z"), "x%3Ay%2Cz");
        assert_eq!(uri("./mc/a b.yaml"), "mc/a%20b.yaml");
        assert_eq!(uri("-"), "stdin");
    }
}
