//! Publish stage: Prometheus metrics. One explicit registry, no globals.
//!
//! Series that describe the node's state (routes, units, sources) are rendered at
//! scrape time from the latest [`Snapshot`], so a route that left the intent or a
//! drift that cleared disappears by itself and a scrape never touches netlink or
//! D-Bus. Cardinality follows the intent, never the routing table.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::compare::{DriftReport, RouteState, SourceState, UnitState};
use crate::model::{ActiveState, Severity};

/// The result of one evaluation, as published.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The report.
    pub report: DriftReport,
    /// When the evaluation finished.
    pub at: SystemTime,
}

/// Where the latest snapshot is published (None until the first evaluation).
pub type SnapshotRx = watch::Receiver<Option<Arc<Snapshot>>>;

/// Labels of a `resyncs_total` series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    /// Why the full re-read happened.
    pub cause: &'static str,
}

/// Labels of a `remediations_total` series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemediationLabels {
    /// `restart-unit`, `reapply`, `activate`.
    pub action: &'static str,
    /// The unit, or `connection/<id>`.
    pub owner: String,
    /// `success`, `failed`, `dry-run`, `gave-up`.
    pub result: &'static str,
}

/// Labels of a per-owner series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OwnerLabels {
    /// The unit, or `connection/<id>`.
    pub owner: String,
}

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Evaluations done.
    pub evaluations: Counter,
    /// How long evaluations take.
    pub evaluation_duration: Histogram,
    /// Route, link and address events received from the kernel.
    pub route_events: Counter,
    /// Full re-reads of the routing table, by cause.
    pub resyncs: Family<CauseLabels, Counter>,
    /// How long the last full re-read of the routing table took.
    pub resync_duration: Gauge<f64, AtomicU64>,
    /// Remediation attempts, by action, owner and result.
    pub remediations: Family<RemediationLabels, Counter>,
    /// When each owner may next be acted on (series of the owners waiting only:
    /// cleared and set again after each plan).
    pub remediation_next_attempt: Family<OwnerLabels, Gauge<f64, AtomicU64>>,
}

/// The exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4`.
    Prometheus,
}

impl Format {
    /// Pick by the request's Accept header, as Prometheus negotiates.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The Content-Type of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

impl Metrics {
    /// A registry with every metric of the agent; state series come from `snapshots`.
    pub fn new(snapshots: SnapshotRx) -> Metrics {
        let mut registry = Registry::default();
        let evaluations = Counter::default();
        registry.register(
            "routewarden_evaluations",
            "Evaluations of intent against the node",
            evaluations.clone(),
        );
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let evaluation_duration = Histogram::new(buckets);
        registry.register(
            "routewarden_evaluation_duration_seconds",
            "Time one evaluation took (full re-reads included)",
            evaluation_duration.clone(),
        );
        let route_events = Counter::default();
        registry.register(
            "routewarden_route_events",
            "Route, rule, link and address notifications received from the kernel",
            route_events.clone(),
        );
        let resyncs = Family::<CauseLabels, Counter>::default();
        registry.register(
            "routewarden_resyncs",
            "Full re-reads of the routing table, by cause",
            resyncs.clone(),
        );
        let resync_duration = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "routewarden_last_resync_duration_seconds",
            "How long the last full read of the routing table took",
            resync_duration.clone(),
        );
        let remediations = Family::<RemediationLabels, Counter>::default();
        registry.register(
            "routewarden_remediations",
            "Remediation attempts (serve --remediate) by action, owner and result",
            remediations.clone(),
        );
        let remediation_next_attempt = Family::<OwnerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "routewarden_remediation_next_attempt_timestamp_seconds",
            "When the owner of a missing route may next be acted on (Unix time), while it waits",
            remediation_next_attempt.clone(),
        );
        registry.register_collector(Box::new(StateCollector { snapshots }));
        Metrics {
            registry,
            evaluations,
            evaluation_duration,
            route_events,
            resyncs,
            resync_duration,
            remediations,
            remediation_next_attempt,
        }
    }

    /// Render the exposition.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let done = match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &self.registry),
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        if done.is_err() {
            out.clear();
        }
        out
    }
}

#[derive(Debug)]
struct StateCollector {
    snapshots: SnapshotRx,
}

#[derive(Debug, Clone, EncodeLabelSet)]
pub(super) struct RouteLabels {
    family: &'static str,
    destination: String,
    gateway: String,
    device: String,
    table: String,
}

#[derive(Debug, Clone, EncodeLabelSet)]
pub(super) struct ReasonLabel {
    pub(super) reason: &'static str,
}

pub(super) type Enc<'a> = DescriptorEncoder<'a>;

/// Samples with their label sets, as [`gauge`] takes them.
pub(super) fn series<L: EncodeLabelSet>(samples: &[(L, i64)]) -> Vec<(&dyn EncodeLabelSetDyn, i64)> {
    samples
        .iter()
        .map(|(l, v)| (l as &dyn EncodeLabelSetDyn, *v))
        .collect()
}

pub(super) fn gauge(
    enc: &mut Enc<'_>,
    name: &str,
    help: &str,
    series: &[(&dyn EncodeLabelSetDyn, i64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        labels.encode_gauge(&mut m, *value)?;
    }
    Ok(())
}

pub(super) fn plain_gauge(enc: &mut Enc<'_>, name: &str, help: &str, value: f64) -> std::fmt::Result {
    ConstGauge::new(value).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Object-safe helper: encode one gauge sample with these labels.
pub(super) trait EncodeLabelSetDyn {
    fn encode_gauge(
        &self,
        m: &mut prometheus_client::encoding::MetricEncoder<'_>,
        v: i64,
    ) -> std::fmt::Result;
}

impl<T: EncodeLabelSet> EncodeLabelSetDyn for T {
    fn encode_gauge(
        &self,
        m: &mut prometheus_client::encoding::MetricEncoder<'_>,
        v: i64,
    ) -> std::fmt::Result {
        ConstGauge::new(v).encode(m.encode_family(self)?)
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let version = [("version", env!("CARGO_PKG_VERSION"))];
        gauge(
            &mut enc,
            "routewarden_build_info",
            "Build information.",
            &[(&version, 1)],
        )?;
        let snapshot = self.snapshots.borrow().clone();
        let Some(snapshot) = snapshot else { return Ok(()) };
        encode_routes(&mut enc, &snapshot.report)?;
        super::declared::encode(&mut enc, &snapshot.report)?;
        super::rule_metrics::encode_rules(&mut enc, &snapshot.report)?;
        encode_units(&mut enc, &snapshot.report)?;
        encode_sources(&mut enc, &snapshot.report)?;
        let at = snapshot
            .at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let name = "routewarden_last_evaluation_timestamp_seconds";
        plain_gauge(
            &mut enc,
            name,
            "When the last evaluation finished (Unix time).",
            at,
        )
    }
}

/// `routewarden_machineconfig_info{name,path,image}` and, when the boot is known,
/// `routewarden_machineconfig_written_after_boot`.
fn encode_machineconfig(enc: &mut Enc<'_>, report: &DriftReport) -> std::fmt::Result {
    let file = report.machineconfig_file.as_ref();
    let info = [
        ("name", report.machineconfig.as_deref().unwrap_or("")),
        ("path", file.map(|f| f.path.as_str()).unwrap_or("")),
        ("image", file.and_then(|f| f.image.as_deref()).unwrap_or("")),
    ];
    gauge(
        enc,
        "routewarden_machineconfig_info",
        "The MachineConfig the intent was read from: its name, the node's file and the layered image (empty when not layered).",
        &[(&info, 1)],
    )?;
    let none: [(&str, &str); 0] = [];
    let after: Vec<(&dyn EncodeLabelSetDyn, i64)> = report
        .machineconfig_written_after_boot
        .map(|after| (&none as &dyn EncodeLabelSetDyn, i64::from(after)))
        .into_iter()
        .collect();
    gauge(
        enc,
        "routewarden_machineconfig_written_after_boot",
        "1 when the MachineConfig file was written after this boot began (a reboot may be pending); absent while unknown.",
        &after,
    )
}

pub(super) fn route_labels(r: &crate::compare::RouteVerdict) -> RouteLabels {
    let e = &r.expected;
    RouteLabels {
        family: e.family.as_str(),
        destination: e.destination.to_string(),
        gateway: e.gateway.map(|g| g.to_string()).unwrap_or_default(),
        device: e.device.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        table: e.table.to_string(),
    }
}

fn encode_routes(enc: &mut Enc<'_>, report: &DriftReport) -> std::fmt::Result {
    let labels: Vec<RouteLabels> = report.routes.iter().map(route_labels).collect();
    let present: Vec<(&dyn EncodeLabelSetDyn, i64)> = labels
        .iter()
        .zip(&report.routes)
        .map(|(l, r)| {
            (
                l as &dyn EncodeLabelSetDyn,
                i64::from(r.state == RouteState::Present),
            )
        })
        .collect();
    gauge(
        enc,
        "routewarden_route_present",
        "1 when the expected route is in the kernel as declared.",
        &present,
    )?;
    let reasons: Vec<(RouteLabels, ReasonLabel)> = labels
        .iter()
        .zip(&report.routes)
        .flat_map(|(l, r)| {
            r.reasons.0.iter().map(|why| {
                (
                    l.clone(),
                    ReasonLabel {
                        reason: why.kind.code(),
                    },
                )
            })
        })
        .collect();
    let reason_series: Vec<(&dyn EncodeLabelSetDyn, i64)> =
        reasons.iter().map(|s| (s as &dyn EncodeLabelSetDyn, 1)).collect();
    gauge(
        enc,
        "routewarden_route_drift_reason",
        "1 for each reason an expected route is not present.",
        &reason_series,
    )?;
    let states = [
        RouteState::Present,
        RouteState::Missing,
        RouteState::Mismatched,
        RouteState::Unselected,
    ];
    let counts: Vec<([(&str, &str); 1], i64)> = states
        .iter()
        .map(|s| {
            (
                [("state", s.as_str())],
                report.routes.iter().filter(|r| r.state == *s).count() as i64,
            )
        })
        .collect();
    gauge(
        enc,
        "routewarden_routes",
        "Expected routes by state.",
        &series(&counts),
    )?;
    let count = report.routes.len() as f64;
    plain_gauge(
        enc,
        "routewarden_expected_routes",
        "Expected routes (MachineConfig and NetworkManager).",
        count,
    )
}

fn encode_units(enc: &mut Enc<'_>, report: &DriftReport) -> std::fmt::Result {
    let known: Vec<_> = report.units.iter().filter(|u| u.state.is_known()).collect();
    let names: Vec<[(&str, &str); 1]> = known.iter().map(|u| [("unit", u.name.as_str())]).collect();
    let ok: Vec<(&dyn EncodeLabelSetDyn, i64)> = names
        .iter()
        .zip(&known)
        .map(|(l, u)| (l as &dyn EncodeLabelSetDyn, i64::from(u.state == UnitState::Ok)))
        .collect();
    gauge(
        enc,
        "routewarden_unit_ok",
        "1 when the unit did what the intent expects (absent while unknown).",
        &ok,
    )?;
    let mut states = Vec::new();
    for u in &known {
        for s in &ActiveState::ALL {
            let value = i64::from(u.active_state.as_ref() == Some(s));
            states.push(([("unit", u.name.as_str()), ("state", s.as_str())], value));
        }
    }
    gauge(
        enc,
        "routewarden_unit_state",
        "1 for the unit's current ActiveState.",
        &series(&states),
    )
}

fn encode_sources(enc: &mut Enc<'_>, report: &DriftReport) -> std::fmt::Result {
    let s = &report.sources;
    let sources: Vec<(&str, &SourceState)> = [
        ("machineconfig", &s.machineconfig),
        ("netlink", &s.netlink),
        ("systemd", &s.systemd),
        ("networkmanager", &s.networkmanager),
    ]
    .into_iter()
    .filter(|(_, st)| **st != SourceState::Skipped)
    .collect();
    let by = |f: fn(&SourceState) -> bool| -> Vec<([(&str, &str); 1], i64)> {
        sources
            .iter()
            .map(|(name, st)| ([("source", *name)], i64::from(f(st))))
            .collect()
    };
    let (up, absent) = (by(SourceState::is_up), by(SourceState::is_absent));
    gauge(
        enc,
        "routewarden_source_up",
        "1 when the source could be read.",
        &series(&up),
    )?;
    gauge(
        enc,
        "routewarden_source_absent",
        "1 when the source is not there, and that is no fault (a node without a MachineConfig).",
        &series(&absent),
    )?;
    encode_machineconfig(enc, report)?;
    let count = |sev| report.diagnostics.iter().filter(|d| d.severity == sev).count() as i64;
    let diags = [
        ([("severity", "warning")], count(Severity::Warning)),
        ([("severity", "error")], count(Severity::Error)),
    ];
    gauge(
        enc,
        "routewarden_intent_diagnostics",
        "Diagnostics about the MachineConfig, by severity.",
        &series(&diags),
    )
}
