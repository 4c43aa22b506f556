//! Publish stage: the drift report as JSON (`check --format json`, `/drift`).
//! Around the report's own fields: `schema_version` (an integer, raised only
//! when a field changes meaning or goes away; fields are only ever added),
//! `node`, `evaluated_at` (RFC 3339) and `sources_detail`, each source as
//! `{"state": "up|down|skipped|absent", "reason": ...}` beside the `sources`
//! strings (`down: why`) tools already read.

use std::time::SystemTime;

use serde::Serialize;

use crate::compare::{DriftReport, SourceState, Sources};

/// The version of the report's JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// What the report does not know of itself.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// The node's name (`--node-name`, `NODE_NAME`, else the hostname).
    pub node: Option<&'a str>,
    /// When the evaluation finished.
    pub evaluated_at: SystemTime,
}

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    node: Option<&'a str>,
    evaluated_at: String,
    #[serde(flatten)]
    report: &'a DriftReport,
    sources_detail: SourcesDetail<'a>,
}

#[derive(Serialize)]
struct SourcesDetail<'a> {
    machineconfig: Detail<'a>,
    netlink: Detail<'a>,
    systemd: Detail<'a>,
    networkmanager: Detail<'a>,
}

/// One source: its state word and, when down, why.
#[derive(Serialize)]
struct Detail<'a> {
    state: &'static str,
    reason: Option<&'a str>,
}

fn detail(state: &SourceState) -> Detail<'_> {
    let (word, reason) = match state {
        SourceState::Up => ("up", None),
        SourceState::Down(why) => ("down", Some(why.as_str())),
        SourceState::Skipped => ("skipped", None),
        SourceState::Absent => ("absent", None),
    };
    Detail { state: word, reason }
}

fn details(s: &Sources) -> SourcesDetail<'_> {
    SourcesDetail {
        machineconfig: detail(&s.machineconfig),
        netlink: detail(&s.netlink),
        systemd: detail(&s.systemd),
        networkmanager: detail(&s.networkmanager),
    }
}

/// The report as pretty JSON, with a newline.
pub fn report(report: &DriftReport, meta: Meta<'_>) -> String {
    super::json(&Json {
        schema_version: SCHEMA_VERSION,
        node: meta.node,
        evaluated_at: humantime::format_rfc3339_seconds(meta.evaluated_at).to_string(),
        report,
        sources_detail: details(&report.sources),
    })
}
