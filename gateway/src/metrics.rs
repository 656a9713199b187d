//! Prometheus metrics: the process-wide recorder every component records into (through the
//! `metrics` facade), `GET /metrics` on the gateway's port, a standalone `/metrics` listener for
//! processes without a gateway, and the HTTP request counter.

use crate::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The process's recorder, installed on first use (later callers share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
                PrometheusBuilder::new().build_recorder().handle()
            })
    })
}

/// `GET /metrics` on the gateway: the log and read-model gauges read now, then every series in
/// the Prometheus text format.
pub async fn render_with_lab(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(err) = record_lab(&state).await {
        tracing::warn!(error = %err, "metrics: cannot read the log head or the venv pool");
    }
    render().await
}

/// `GET /metrics` without a database: every series the process recorded.
pub async fn render() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
}

/// `runledger_log_head`, `runledger_projection_lag_events` and `runledger_venvs{machine, status}`.
async fn record_lab(state: &AppState) -> Result<(), runledger_readmodel::ReadModelError> {
    let head = runledger_readmodel::log_head(&state.pool).await?;
    metrics::gauge!("runledger_log_head").set(head as f64);
    let lag = head - state.freshness.position();
    metrics::gauge!("runledger_projection_lag_events").set(lag.max(0) as f64);
    let pool: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT coalesce(m.name, v.machine_id::text), v.status, count(*) \
         FROM rm_venvs.venvs v LEFT JOIN rm_machines.machines m USING (machine_id) \
         GROUP BY 1, 2",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(runledger_readmodel::ReadModelError::from)?;
    let machines: std::collections::BTreeSet<&str> = pool
        .iter()
        .map(|(machine, _, _)| machine.as_str())
        .collect();
    for status in ["provisioning", "free", "in_use", "broken", "removed"] {
        for &machine in &machines {
            let count = pool
                .iter()
                .find(|(m, s, _)| m == machine && s == status)
                .map_or(0, |(_, _, count)| *count);
            metrics::gauge!("runledger_venvs", "machine" => machine.to_owned(), "status" => status)
                .set(count as f64);
        }
    }
    Ok(())
}

/// Counts every request as `runledger_http_requests_total{method, route, status}` (the route
/// template, never the concrete path) and times it in `runledger_http_request_seconds`.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("runledger_http_request_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("runledger_http_requests_total", "method" => method, "route" => route,
                      "status" => status)
    .increment(1);
    response
}

/// Serves only `/metrics` on `addr` until `shutdown`: for processes that run no gateway.
pub async fn serve_standalone(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), crate::GatewayError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| crate::GatewayError::Listen { addr, source })?;
    let router = Router::new().route("/metrics", get(render));
    tracing::info!(%addr, "metrics listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(crate::GatewayError::Serve)
}
