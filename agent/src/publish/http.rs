//! Publish stage: the HTTP endpoints of the daemon. `/metrics` (Prometheus text
//! or OpenMetrics by content negotiation), `/healthz`, `/readyz`, `/drift`, and
//! `/`, the status page (`page.rs`).
//!
//! Handlers only read the latest snapshot: no netlink or D-Bus work per request.
//! Connections are bounded in number, header size and header read time, so slow
//! or hostile clients cannot starve the scrape.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::metrics::{Format, Metrics, SnapshotRx};
use super::page;

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to send its request headers (also ends idle keep-alives).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Longest a connection may live.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The registry.
    pub metrics: Arc<Metrics>,
    /// Latest evaluation.
    pub snapshots: SnapshotRx,
    /// True while the event loop runs.
    pub alive: Arc<AtomicBool>,
    /// The node's name, for `/drift`.
    pub node: Option<String>,
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/drift", get(drift))
        .route("/", get(status_page))
        .with_state(state)
}

async fn metrics(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        s.metrics.render(format),
    )
        .into_response()
}

async fn healthz(State(s): State<HttpState>) -> Response {
    if s.alive.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "event loop stopped\n").into_response()
    }
}

async fn readyz(State(s): State<HttpState>) -> Response {
    if s.snapshots.borrow().is_some() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "first evaluation not done\n").into_response()
    }
}

async fn drift(State(s): State<HttpState>) -> Response {
    let snapshot = s.snapshots.borrow().clone();
    match snapshot {
        Some(snap) => (
            [(header::CONTENT_TYPE, "application/json")],
            super::report_json::report(
                &snap.report,
                super::report_json::Meta {
                    node: s.node.as_deref(),
                    evaluated_at: snap.at,
                },
            ),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "first evaluation not done\n").into_response(),
    }
}

/// Scripts, frames, forms and outside assets refused: the page needs none.
const PAGE_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn status_page(State(s): State<HttpState>) -> Response {
    let snapshot = s.snapshots.borrow().clone();
    let status = match snapshot {
        Some(_) => StatusCode::OK,
        None => StatusCode::SERVICE_UNAVAILABLE,
    };
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let body = page::render(snapshot.as_deref(), SystemTime::now());
    (status, headers, body).into_response()
}

/// Serve until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
    }
}
