//! Prometheus metrics: the process-wide recorder every component records into (through the
//! `metrics` facade), `GET /metrics` on the gateway's port, a standalone `/metrics` listener for
//! processes without a gateway, and the HTTP request counter.

use axum::Router;
use axum::extract::{MatchedPath, Request};
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

/// `GET /metrics`: every series in the Prometheus text format.
pub async fn render() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
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
