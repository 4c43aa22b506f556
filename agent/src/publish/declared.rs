//! Publish stage: the metrics that say who declares each expected route and
//! whether the NetworkManager profiles behind them are active. Rendered from the
//! snapshot at scrape time like the rest; one series per declaring source of a
//! route (at most two) and one per expected profile.

use prometheus_client::encoding::EncodeLabelSet;

use super::metrics::{gauge, route_labels, series, Enc, RouteLabels};
use crate::compare::DriftReport;
use crate::model::SourceKind;

#[derive(Debug, Clone, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct ConnectionLabels {
    connection: String,
    device: String,
}

/// `routewarden_route_declared` and `routewarden_connection_active`.
pub(super) fn encode(enc: &mut Enc<'_>, report: &DriftReport) -> std::fmt::Result {
    let mut declared: Vec<((RouteLabels, SourceLabel), i64)> = Vec::new();
    for r in &report.routes {
        let mut seen: Vec<&'static str> = Vec::new();
        for s in &r.expected.sources {
            let source = source_of_truth(s.kind);
            if !seen.contains(&source) {
                seen.push(source);
                declared.push(((route_labels(r), SourceLabel { source }), 1));
            }
        }
    }
    gauge(
        enc,
        "routewarden_route_declared",
        "1 for each source of truth (machineconfig, networkmanager) that declares the expected route.",
        &series(&declared),
    )?;
    let connections: Vec<(ConnectionLabels, i64)> = report
        .connections
        .iter()
        .filter_map(|c| {
            let labels = ConnectionLabels {
                connection: c.connection.clone(),
                device: c.device.to_string(),
            };
            c.active.map(|a| (labels, i64::from(a)))
        })
        .collect();
    gauge(
        enc,
        "routewarden_connection_active",
        "1 when the NetworkManager profile whose routes or rules are expected is active on its device (absent while NetworkManager cannot be asked).",
        &series(&connections),
    )
}

/// The source of truth a declaration form belongs to.
fn source_of_truth(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::NetworkManager => "networkmanager",
        SourceKind::Nmcli
        | SourceKind::IpRoute
        | SourceKind::IpRule
        | SourceKind::Keyfile
        | SourceKind::Ifcfg
        | SourceKind::Nmstate
        | SourceKind::Nncp => "machineconfig",
    }
}
