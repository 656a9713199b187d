//! Logging and tracing: human-readable logs by default, JSON with `RUNLEDGER_LOG_FORMAT=json`;
//! `RUST_LOG` filters. Built with the `otlp` cargo feature, spans (with their run, command,
//! event and correlation ids) are also exported over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What must outlive the program's work: flushes exported spans when dropped.
#[must_use = "dropping it stops the span export"]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("runledger: flushing the OTLP span export failed: {err}");
        }
    }
}

/// True when the environment asks for span export.
fn otlp_wanted() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// Installs the global subscriber; `default_level` applies when `RUST_LOG` is not set.
pub fn init(format: &str, default_level: &str) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Postgres NOTICEs ("schema ... does not exist, skipping") are noise at info.
        EnvFilter::new(format!("{default_level},sqlx::postgres::notice=warn"))
    });
    let logs = match format {
        "json" => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        "text" => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        other => anyhow::bail!("RUNLEDGER_LOG_FORMAT must be text or json, got {other:?}"),
    };
    #[cfg(feature = "otlp")]
    {
        let provider = if otlp_wanted() {
            Some(otlp::provider(None)?)
        } else {
            None
        };
        let spans = provider.as_ref().map(otlp::layer);
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(spans)
            .try_init()?;
        Ok(Telemetry { provider })
    }
    #[cfg(not(feature = "otlp"))]
    {
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .try_init()?;
        if otlp_wanted() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this runledger was built without the `otlp` feature: no spans are exported"
            );
        }
        Ok(Telemetry {})
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// A batching provider exporting over OTLP/HTTP (protobuf) to `endpoint`, else to the one
    /// the standard `OTEL_EXPORTER_OTLP_*` variables name; the service is `runledger` unless
    /// `OTEL_SERVICE_NAME` says otherwise.
    pub(super) fn provider(endpoint: Option<&str>) -> anyhow::Result<SdkTracerProvider> {
        use opentelemetry_otlp::WithExportConfig as _;
        let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let exporter = builder.build()?;
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "runledger".to_owned());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .build();
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build())
    }

    /// The layer turning `tracing` spans into exported OpenTelemetry spans.
    pub(super) fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("runledger"))
    }
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// A collector on a loopback port: every span batch POSTed to `/v1/traces` is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_with_their_ids_reach_an_otlp_collector() {
        let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
        let kept = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((kind, body));
                ""
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let endpoint = format!("http://{addr}/v1/traces");
        let provider = super::otlp::provider(Some(&endpoint)).expect("a provider");
        let subscriber = tracing_subscriber::registry().with(super::otlp::layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "run",
                run_id = "0193a000-0000-7000-8000-00000000000a",
                correlation_id = "c0ffee00-0000-4000-8000-000000000001"
            );
            span.in_scope(|| tracing::info!("run ended"));
        });
        tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .expect("shutdown task")
            .expect("spans flushed");
        let received = received.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(received.len(), 1, "one batch");
        let (kind, body) = &received[0];
        assert_eq!(kind, "application/x-protobuf");
        let text = String::from_utf8_lossy(body);
        for expected in [
            "runledger",
            "run_id",
            "0193a000-0000-7000-8000-00000000000a",
            "correlation_id",
        ] {
            assert!(
                text.contains(expected),
                "{expected} not in the exported batch"
            );
        }
    }
}
