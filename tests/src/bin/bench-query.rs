//! `query` benchmark: 1,000,000 runs bulk-loaded into the runs read model (the
//! projector's own tables and indexes, in the shape it writes), the gateway running as its own
//! process (`runledger serve --components gateway`), and a load generator with 16 connections
//! asking `GET /api/v1/runs?status=failed&since=…&until=…&sort=-started_at&limit=50`, following
//! `next_cursor` for up to 20 pages before starting over. Baseline in the same run, on the same
//! server: `GET /healthz` with the same 16 connections.
//!
//! Run: `cargo build --release --bin runledger --bin bench-query && target/release/bench-query`
//! Prints a final JSON line `{"bench":"query",...}`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use runledger_readmodel::ALL;
use runledger_test_support::TestDb;
use runledger_tests::http_load::{TOKEN, insert_token, load, serve_gateway};
use serde_json::{Value, json};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Runs in the read model.
    #[arg(long, default_value_t = 1_000_000)]
    runs: i64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Pages followed before a connection starts over.
    #[arg(long, default_value_t = 20)]
    pages: usize,
    /// The runledger binary.
    #[arg(long, default_value = "target/release/runledger")]
    runledger: String,
    /// Keep the database afterwards (its name is printed), e.g. to EXPLAIN queries.
    #[arg(long)]
    keep_db: bool,
}

/// 1 in 20 runs failed; 1 in 20 still queued (never started).
const LOAD_SQL: &str = "
INSERT INTO rm_runs.runs
SELECT md5(i::text)::uuid AS run_id,
       CASE i % 20 WHEN 0 THEN 'failed' WHEN 1 THEN 'error' WHEN 2 THEN 'queued'
                   WHEN 3 THEN 'cancelled' ELSE 'passed' END AS status,
       'user-' || (i % 25) AS requested_by,
       md5('tc' || (i % 40))::uuid AS test_case_id,
       'test case ' || (i % 40) AS test_case_name,
       md5('m' || (i % 100))::uuid AS machine_id,
       'machine-' || (i % 100) AS machine_name,
       md5('v' || (i % 400))::uuid AS venv_id,
       'venv-' || (i % 400) AS venv_name,
       NULL, NULL, ARRAY['linux'], '{}'::jsonb, 1 AS attempt,
       CASE WHEN i % 20 = 2 THEN NULL ELSE 'executor-' || (i % 8) END AS executor,
       false, NULL,
       q AS queued_at,
       CASE WHEN i % 20 = 2 THEN NULL ELSE q + interval '1 second' END AS assigned_at,
       CASE WHEN i % 20 = 2 THEN NULL ELSE q + interval '2 seconds' END AS started_at,
       CASE WHEN i % 20 = 2 THEN NULL ELSE q + interval '2 seconds' + (i % 600) * interval '1 second' END,
       CASE WHEN i % 20 = 2 THEN NULL ELSE (i % 600) * 1000 END AS duration_ms,
       CASE i % 20 WHEN 0 THEN 1 WHEN 2 THEN NULL ELSE 0 END AS exit_code,
       CASE WHEN i % 20 = 2 THEN NULL
            ELSE jsonb_build_object('passed', 10, 'failed', CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END,
                                    'skipped', 0, 'errors', 0) END AS summary,
       CASE WHEN i % 20 = 0 THEN 'exit code 1' END AS reason,
       CASE WHEN i % 20 = 1 THEN 'ssh_unreachable' END AS error_code,
       4096, 3, i, q
FROM generate_series(1, $1::bigint) AS i,
     LATERAL (SELECT timestamptz '2026-01-01' + i * interval '2 seconds' AS q) AS t";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let db = TestDb::create().await;
    runledger_projections::rebuild(&db.pool, &ALL, |_| {})
        .await
        .expect("create the read models");
    let loading = Instant::now();
    sqlx::query(LOAD_SQL)
        .bind(args.runs)
        .execute(&db.pool)
        .await
        .expect("bulk-load runs");
    sqlx::query("VACUUM (ANALYZE) rm_runs.runs")
        .execute(&db.pool)
        .await
        .unwrap();
    eprintln!("loaded {} runs in {:?}", args.runs, loading.elapsed());
    insert_token(&db.pool).await.unwrap();
    let (mut gateway, base) = serve_gateway(&args.runledger, &db.url, "benchq")
        .await
        .expect("start the gateway (cargo build --release --bin runledger)");

    // A week of started runs, failed ones only: about 15,000 of the million.
    let query = format!(
        "{base}/api/v1/runs?status=failed&since=2026-01-10T00:00:00Z&until=2026-01-17T00:00:00Z\
         &sort=-started_at&limit=50"
    );
    let pages = args.pages;
    let runs_query = {
        let query = query.clone();
        move |_worker: usize, client: reqwest::Client| {
            let query = query.clone();
            async move {
                let mut samples = Vec::new();
                let mut cursor: Option<String> = None;
                for _ in 0..pages {
                    let url = match &cursor {
                        Some(cursor) => format!("{query}&cursor={cursor}"),
                        None => query.clone(),
                    };
                    let start = Instant::now();
                    let answer = client.get(&url).bearer_auth(TOKEN).send().await;
                    let body: Option<Value> = match answer {
                        Ok(response) if response.status().is_success() => {
                            response.json().await.ok()
                        }
                        _ => None,
                    };
                    let ms = start.elapsed().as_secs_f64() * 1e3;
                    let ok = body
                        .as_ref()
                        .is_some_and(|b| b["items"].as_array().is_some_and(|i| i.len() == 50));
                    samples.push((ms, ok));
                    cursor = body.and_then(|b| b["next_cursor"].as_str().map(str::to_owned));
                    if cursor.is_none() {
                        break;
                    }
                }
                samples
            }
        }
    };
    let queries = load(args.connections, args.seconds, runs_query).await;
    let health_url = format!("{base}/healthz");
    let health = load(
        args.connections,
        args.seconds,
        move |_, client: reqwest::Client| {
            let url = health_url.clone();
            async move {
                let start = Instant::now();
                let ok = client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                vec![(start.elapsed().as_secs_f64() * 1e3, ok)]
            }
        },
    )
    .await;
    let _ = gateway.start_kill();
    let _ = gateway.wait().await;
    if args.keep_db {
        eprintln!("kept database {}", db.name);
    } else {
        db.cleanup().await;
    }
    println!(
        "{}",
        json!({
            "bench": "query",
            "runs": args.runs,
            "connections": args.connections,
            "requests": queries.requests,
            "requests_per_s": queries.per_s,
            "p50_ms": queries.p50_ms,
            "p99_ms": queries.p99_ms,
            "errors": queries.errors,
            "baseline_healthz_per_s": health.per_s,
            "baseline_healthz_p99_ms": health.p99_ms,
            "ratio": queries.per_s / health.per_s,
            "target": {"p99_ms": 20, "ratio": 0.3},
        })
    );
}
