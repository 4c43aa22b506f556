//! Publish stage: the metrics that say who declares each expected route and
//! whether the NetworkManager profiles behind them are active. Rendered from the
//! snapshot at scrape time like the rest; one series per declaring source of a
//! route (at most two) and one per expected profile.

use prometheus_client::encoding::EncodeLabelSet;

use super::metrics::{gauge, route_labels, Enc, EncodeLabelSetDyn, RouteLabels};
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
    let mut declared: Vec<(RouteLabels, SourceLabel)> = Vec::new();
    for r in &report.routes {
        let mut seen: Vec<&'static str> = Vec::new();
        for s in &r.expected.sources {
            let source = source_of_truth(s.kind);
            if !seen.contains(&source) {
                seen.push(source);
                declared.push((route_labels(r), SourceLabel { source }));
            }
        }
    }
    let series: Vec<(&dyn EncodeLabelSetDyn, i64)> = declared
        .iter()
        .map(|l| (l as &dyn EncodeLabelSetDyn, 1))
        .collect();
    gauge(
        enc,
        "routewarden_route_declared",
        "1 for each source of truth (machineconfig, networkmanager) that declares the expected route.",
        &series,
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
    let series: Vec<(&dyn EncodeLabelSetDyn, i64)> = connections
        .iter()
        .map(|(l, v)| (l as &dyn EncodeLabelSetDyn, *v))
        .collect();
    gauge(
        enc,
        "routewarden_connection_active",
        "1 when the NetworkManager profile whose routes or rules are expected is active on its device (absent while NetworkManager cannot be asked).",
        &series,
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
