//! `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz` (this
//! instance can take commands: the store answers and the journal's backlog is fresh). None
//! needs a token: they say how much, never what or who, and probes and scrapers hold none.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_audit::{AuditWriter, Store};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AdminState;

/// How old the oldest entry not yet in the store may be before the instance says it is not
/// ready: past it, the store is not keeping up (or is failing) and a load balancer should
/// send new sessions elsewhere. A burst can leave the store seconds behind and be drained at
/// once (12 s at worst in `benches/e2e/instances.sh`, on 2 cores shared by the load, two
/// gateways and the store): the bound is well past that, so a burst does not take every
/// instance out of the pool at the same moment.
pub const READY_LAG: Duration = Duration::from_secs(30);

/// How long `/readyz` waits for the store to answer.
const STORE_CHECK: Duration = Duration::from_secs(2);

/// Live sessions on this instance (gauge).
const SESSIONS_LIVE: &str = "gatehouse_sessions_live";

/// Installs the process's Prometheus recorder (once; later calls get an unconnected handle
/// that renders nothing, as in tests that start several servers in one process).
pub fn install_recorder() -> PrometheusHandle {
    // Latency from 25 µs to 2.5 s: a statement's admission is tens of microseconds; a slow
    // store shows in the tail.
    let buckets = [
        0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
        0.1, 0.25, 1.0, 2.5,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(gatehouse_core::telemetry::names::ADMISSION_SECONDS.into()),
            &buckets,
        )
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::debug!("a metrics recorder was already installed");
    }
    handle
}

/// What the endpoints read.
#[derive(Clone)]
pub struct Health {
    /// The Prometheus recorder's handle.
    pub metrics: PrometheusHandle,
    /// The write path (backlog, lag, failing).
    pub writer: AuditWriter,
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AdminState>) -> Response {
    metrics::gauge!(SESSIONS_LIVE).set(state.gateway.live_sessions() as f64);
    let write_path = state.health.writer.health();
    metrics::gauge!(gatehouse_audit::writer::BACKLOG).set(write_path.backlog as f64);
    metrics::gauge!(gatehouse_audit::writer::LAG).set(write_path.lag.as_secs_f64());
    let text = state.health.metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /readyz`: 200 `ready`, or 503 with the reason.
pub async fn ready(State(state): State<AdminState>) -> Response {
    let health = state.health.writer.health();
    if let Some(why) = health.failing {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response();
    }
    if health.lag > READY_LAG {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: {} audit entries wait for the store, the oldest for {:.1}s\n",
                health.backlog,
                health.lag.as_secs_f64()
            ),
        )
            .into_response();
    }
    match store_answers(state.store.clone()).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// Whether the store answers a trivial read in time.
async fn store_answers(store: std::sync::Arc<Store>) -> Result<(), String> {
    let check = tokio::task::spawn_blocking(move || store.ping());
    match tokio::time::timeout(STORE_CHECK, check).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("the store does not answer: {e}")),
        Ok(Err(e)) => Err(format!("the store check failed: {e}")),
        Err(_) => Err(format!(
            "the store did not answer within {}s",
            STORE_CHECK.as_secs()
        )),
    }
}
