//! Prometheus metrics: the process-wide recorder every component records into (through the
//! `metrics` facade), `GET /metrics` on the gateway's port, a standalone `/metrics` listener for
//! processes without a gateway, and the HTTP request counter.

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Buckets of every latency histogram (seconds): a millisecond to a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets of the run duration and queue wait histograms (seconds): a second to a day.
const RUN_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
    86400.0,
];

/// The exporter, with histograms (not summaries) so that dashboards can aggregate them.
fn builder() -> PrometheusBuilder {
    let builder = PrometheusBuilder::new();
    let with_runs = builder.set_buckets(LATENCY_BUCKETS).and_then(|b| {
        b.set_buckets_for_metric(Matcher::Prefix("runledger_run_".into()), RUN_BUCKETS)
    });
    match with_runs {
        Ok(builder) => builder,
        Err(err) => {
            tracing::warn!(error = %err, "histogram buckets refused; exporting summaries");
            PrometheusBuilder::new()
        }
    }
}

/// The process's recorder, installed on first use (later callers share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        builder()
            .install_recorder()
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
                builder().build_recorder().handle()
            })
    })
}

/// The bearer token `/metrics` requires, when the operator sets one
/// (`RUNLEDGER_METRICS_TOKEN`): the series name machines, executors and run counts, which is
/// more than an anonymous visitor should learn. Only its SHA-256 is kept, and a presented token
/// is compared by digest in constant time.
#[derive(Clone, Default)]
pub struct MetricsToken(Option<Arc<[u8; 32]>>);

impl MetricsToken {
    /// Requires `token` (none: `/metrics` is open, as Prometheus scrapes by default).
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|token| Arc::new(Sha256::digest(token.as_bytes()).into())))
    }

    /// `Ok` when no token is required or `headers` carry `Authorization: Bearer <token>`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.0 else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| Sha256::digest(token.trim().as_bytes()));
        let matches = presented.is_some_and(|digest| {
            digest
                .iter()
                .zip(expected.iter())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
        });
        match matches {
            true => Ok(()),
            false => Err(ApiError::unauthorized(
                "/metrics needs Authorization: Bearer <RUNLEDGER_METRICS_TOKEN>",
            )),
        }
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "MetricsToken([required])",
            None => "MetricsToken(none)",
        })
    }
}

/// `GET /metrics` on the gateway: the log and read-model gauges read now, then every series in
/// the Prometheus text format.
pub async fn render_with_lab(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.settings.metrics_token.check(&headers)?;
    if let Err(err) = record_lab(&state).await {
        tracing::warn!(error = %err, "metrics: cannot read the log head or the venv pool");
    }
    Ok(render())
}

/// Every series the process recorded, in the Prometheus text format.
fn render() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}

/// The last position the outbox relay published: the events stream's last sequence (the relay
/// keeps the two equal).
async fn published(state: &AppState) -> Result<i64, String> {
    let js = runledger_bus::jetstream(state.nats.clone());
    let mut stream = js
        .get_stream(state.names.events_stream())
        .await
        .map_err(|err| err.to_string())?;
    let info = stream.info().await.map_err(|err| err.to_string())?;
    i64::try_from(info.state.last_sequence).map_err(|err| err.to_string())
}

/// `runledger_log_head`, `runledger_projection_lag_events`, `runledger_outbox_lag_events` and
/// `runledger_venvs{machine, status}`.
async fn record_lab(state: &AppState) -> Result<(), runledger_readmodel::ReadModelError> {
    let head = runledger_readmodel::log_head(&state.pool).await?;
    metrics::gauge!("runledger_log_head").set(head as f64);
    let lag = head - state.freshness.position();
    metrics::gauge!("runledger_projection_lag_events").set(lag.max(0) as f64);
    match published(state).await {
        Ok(published) => {
            metrics::gauge!("runledger_outbox_lag_events").set((head - published).max(0) as f64);
        }
        Err(err) => tracing::warn!(error = %err, "metrics: cannot read the events stream"),
    }
    let pool = runledger_readmodel::lab::venv_counts(&state.pool).await?;
    let machines: std::collections::BTreeSet<&str> =
        pool.iter().map(|count| count.machine.as_str()).collect();
    for status in runledger_readmodel::rows::VenvStatus::ALL {
        for &machine in &machines {
            let count = pool
                .iter()
                .find(|c| c.machine == machine && c.status == status)
                .map_or(0, |c| c.count);
            metrics::gauge!("runledger_venvs", "machine" => machine.to_owned(), "status" => status.as_str())
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
    token: MetricsToken,
    shutdown: CancellationToken,
) -> Result<(), crate::GatewayError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| crate::GatewayError::Listen { addr, source })?;
    let router = Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| async move { token.check(&headers).map(|()| render()) }),
    );
    tracing::info!(%addr, "metrics listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(crate::GatewayError::Serve)
}
