//! The README's metrics table lists exactly the metrics the agent serves: the
//! names of a live agent's `/metrics` (a route and a rule in its intent, in a
//! network namespace the test makes) and of the golden expositions (which
//! `golden_outputs.rs` keeps equal to what the renderer writes, with units,
//! NetworkManager and reboots in them) against the names in the table's first
//! column. A metric added without a row, or a row left for a metric that is
//! gone, fails here. Run as root.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::{ip_machineconfig, Agent, NetNs, TempDir};

/// Every `routewarden_*` word in the first column of the table under `## Metrics`.
fn readme_names() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a ## Metrics section");
    let mut out = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `routewarden_")) {
        let first = row.split(" | ").next().unwrap_or("");
        out.extend(words(first));
    }
    out
}

/// `routewarden_[a-z_]+` words of a text.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("routewarden_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// Metric names of an exposition (`# TYPE` lines; a counter by its `_total` name).
fn served(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, kind) = (w.next()?, w.next()?);
            Some(match kind {
                "counter" if !name.ends_with("_total") => format!("{name}_total"),
                _ => name.to_owned(),
            })
        })
        .collect()
}

#[test]
fn the_readme_lists_every_metric_served_and_no_other() {
    let ns = NetNs::new();
    let dir = TempDir::new("readme-metrics");
    let mc = dir.path.join("mc.json");
    let lines = [
        "route add 10.1.0.0/24 via 172.18.0.1 dev ens5",
        "rule add from 10.1.0.0/24 priority 100 table 100",
    ];
    std::fs::write(&mc, ip_machineconfig(&lines)).expect("write");
    let agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    let mut names = served(&agent.metrics(&ns));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for entry in std::fs::read_dir(&golden).expect("golden dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "prom" || e == "om") {
            names.extend(served(&std::fs::read_to_string(&path).expect("read")));
        }
    }
    let readme = readme_names();
    let missing: Vec<&String> = names.difference(&readme).collect();
    let gone: Vec<&String> = readme.difference(&names).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "served but not in the README's metrics table: {missing:?}; in the table but not served: {gone:?}"
    );
}
