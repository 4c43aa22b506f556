//! The daemon (`routewarden serve`): one event loop that keeps an evaluation
//! current from kernel notifications, systemd signals, MachineConfig file changes
//! and SIGHUP (which re-reads the MachineConfig), and publishes each new [`Snapshot`] to the HTTP side through a
//! `tokio::sync::watch`. Scrapes only render the latest snapshot.

mod changes;
mod daemon;
pub mod index;
pub mod mcwatch;
pub mod networkmanager;
mod report_log;
mod rules;
pub mod systemd;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use daemon::RemediationConfig;

use crate::input::Lookup;
use crate::intent::Options;
use crate::publish::http::{self, HttpState};
use crate::publish::metrics::{CauseLabels, Metrics};

/// Why a full re-read of the routing table happened (`resyncs_total{cause}`):
/// `route` is a change to a wanted route whose effect only the table tells.
pub const RESYNC_CAUSES: [&str; 7] = [
    "startup", "periodic", "overrun", "link", "address", "intent", "route",
];

/// What `serve` was told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the MachineConfig is (a file, or the node's files); never stdin.
    pub machineconfig: Lookup,
    /// Node name and such for the intent.
    pub options: Options,
    /// D-Bus address (else the environment's, else the system bus).
    pub dbus_address: Option<String>,
    /// Skip systemd entirely.
    pub no_units: bool,
    /// Skip NetworkManager entirely.
    pub no_networkmanager: bool,
    /// Read the MachineConfig (else only NetworkManager declares routes).
    pub intent_machineconfig: bool,
    /// NetworkManager's routes join the intent.
    pub intent_networkmanager: bool,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Period of the full re-read that guards against missed events.
    pub resync_interval: Duration,
    /// `--remediate` and its guards.
    pub remediation: RemediationConfig,
}

/// Run until SIGTERM or SIGINT; SIGHUP re-reads the MachineConfig.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = bind(config.listen).await?;
    let bound = listener.local_addr().unwrap_or(config.listen);
    let (snap_tx, snap_rx) = watch::channel(None);
    let metrics = Arc::new(Metrics::new(snap_rx.clone()));
    for cause in RESYNC_CAUSES {
        let _ = metrics.resyncs.get_or_create(&CauseLabels { cause });
    }
    let alive = Arc::new(AtomicBool::new(true));
    let state = HttpState {
        metrics: metrics.clone(),
        snapshots: snap_rx,
        alive: alive.clone(),
        node: config.options.node_name.clone(),
    };
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server = tokio::spawn(http::serve(listener, http::router(state), async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %bound,
        machineconfig = %config.machineconfig,
        node = config.options.node_name.as_deref().unwrap_or(""),
        "serving"
    );
    let result = daemon::Daemon::start(config, metrics, snap_tx)
        .await?
        .run(shutdown_signal())
        .await;
    alive.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_millis(300), server).await;
    result
}

/// Listen on `addr`; every IPv6 address (`:PORT`) falls back to every IPv4
/// address on a node where IPv6 is off.
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Err(e) if addr.ip() == std::net::Ipv6Addr::UNSPECIFIED => {
            let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, addr.port()));
            tracing::debug!(error = %e, "every IPv6 address refused; listening on every IPv4 address");
            TcpListener::bind(v4)
                .await
                .with_context(|| format!("listening on {addr} and on {v4}"))
        }
        bound => bound.with_context(|| format!("listening on {addr}")),
    }
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}
