//! What the HTTP benchmarks share: a gateway of its own on a bulk-loaded database, a token for
//! it, and a load generator keeping connections busy and measuring each request.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The bearer token [`insert_token`] makes valid.
pub const TOKEN: &str = "rl_bench-token";

/// Makes [`TOKEN`] a member's token for a day.
pub async fn insert_token(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO gateway.tokens (token_hash, username, role, expires_at) \
         VALUES ($1, 'bench', 'member', now() + interval '1 day')",
    )
    .bind(Sha256::digest(TOKEN.as_bytes()).to_vec())
    .execute(pool)
    .await?;
    Ok(())
}

/// `runledger serve --components gateway` on `database_url` and a free port, under a NATS
/// prefix of its own starting with `prefix`; returns it and its base URL once it answers.
pub async fn serve_gateway(
    runledger: &str,
    database_url: &str,
    prefix: &str,
) -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let nats_url =
        std::env::var("RUNLEDGER_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let gateway = Command::new(runledger)
        .args(["serve", "--components", "gateway", "--dev"])
        .env("DATABASE_URL", database_url)
        .env("NATS_URL", nats_url)
        .env("RUNLEDGER_NATS_PREFIX", format!("{prefix}{port}"))
        .env("RUNLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the gateway did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((gateway, base))
}

/// What a load measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Requests answered.
    pub requests: usize,
    /// Per second.
    pub per_s: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Requests whose answer was not the expected one.
    pub errors: usize,
}

/// The `p`-th percentile (0–100) of `sorted`, by rounded rank; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `connections` workers, each running `work` (given its number and an HTTP client) in a loop
/// for `seconds`; `work` returns each request's latency in ms and whether it was right.
pub async fn load<F, Fut>(connections: usize, seconds: u64, work: F) -> Measured
where
    F: Fn(usize, reqwest::Client) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Vec<(f64, bool)>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let work = work.clone();
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap_or_default();
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                samples.extend(work(worker, client.clone()).await);
            }
            samples
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        for (ms, ok) in worker.await.unwrap_or_default() {
            latencies.push(ms);
            errors += usize::from(!ok);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Measured {
        requests: latencies.len(),
        per_s: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        errors,
    }
}
