//! `insights` benchmark: a log of 1,000,000 test results (2,000 tests × 500 runs, reported in
//! parts of 500, a few tests always failing, skipped or flaky), then
//!
//! 1. **rebuild**: the `tests` read model rebuilt from that log, against a `COPY` scan of the
//!    same events (`COPY (SELECT … FROM events ORDER BY position) TO STDOUT`, read whole) in the
//!    same run: the least any rebuild must do is read them;
//! 2. **queries**: the gateway as its own process (`runledger serve --components gateway`) and
//!    16 connections alternating the tests list (`GET /api/v1/tests?sort=-flaky_score&limit=50`)
//!    and a test's page (`GET /api/v1/tests/{id}?limit=50`, one of 100 tests), against `pgbench`
//!    running the same SQL with the same 16 clients.
//!
//! Run: `cargo build --release --bin runledger --bin bench-insights && target/release/bench-insights`
//! Prints a final JSON line `{"bench":"insights",...}`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use runledger_readmodel::{ALL, ReadModel, test_insights as insights};
use runledger_test_support::TestDb;
use runledger_tests::http_load::{Measured, TOKEN, insert_token, load, serve_gateway};
use runledger_tests::replay::test_results::{SuiteSettings, write};
use runledger_tests::replay::{COPY_EVENTS, LogWriter};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::process::Command;

#[derive(Parser)]
struct Args {
    /// Tests in the suite.
    #[arg(long, default_value_t = 2_000)]
    tests: usize,
    /// Runs of it.
    #[arg(long, default_value_t = 500)]
    runs: usize,
    /// Concurrent connections (and pgbench clients).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds each query phase runs.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// The runledger binary.
    #[arg(long, default_value = "target/release/runledger")]
    runledger: String,
    /// Keep the database afterwards (its name is printed).
    #[arg(long)]
    keep_db: bool,
}

/// The list query as the gateway sends it for `sort=-flaky_score&limit=50` (no filters).
const LIST_SQL: &str = "SELECT test_id, test_case_id, classname, name, runs, pass_rate, fail_rate, \
    last_status, last_run_at, last_changed_at, flaky, flaky_score, duration_p50_ms, duration_p90_ms, \
    EXISTS (SELECT 1 FROM rm_tests.quarantines q WHERE q.test_id = t.test_id) AS quarantined \
    FROM rm_tests.tests t WHERE true ORDER BY flaky_score DESC, test_id DESC LIMIT 51;";

/// A test's page as the gateway queries it (`limit=50`, the default window), for the test
/// `:id` of `bench_ids`: the readmodel's own SQL, with the parameters filled in.
fn detail_script() -> String {
    let test = "(SELECT test_id FROM bench_ids WHERE i = :i)";
    let row = insights::TEST_SQL
        .replace("$1", test)
        .replace("$2", "false");
    let history = insights::HISTORY_SQL
        .replace("$1", test)
        .replace("$2", "9223372036854775807")
        .replace("$3", "2147483647")
        .replace("$4", "51");
    format!("\\set i random(1, 100)\n{row};\n{history};\n")
}

async fn load_log(db: &TestDb, settings: SuiteSettings) -> (i64, Duration) {
    let started = Instant::now();
    let events = settings.events();
    let mut log = LogWriter::new(events);
    write(&mut log, settings).expect("generate the log");
    let mut connection = db.pool.acquire().await.unwrap();
    let mut copy = connection.copy_in_raw(COPY_EVENTS).await.unwrap();
    copy.send(log.take()).await.unwrap();
    copy.finish().await.unwrap();
    sqlx::query("UPDATE log_head SET position = $1")
        .bind(events)
        .execute(&mut *connection)
        .await
        .unwrap();
    sqlx::query("VACUUM (ANALYZE) events")
        .execute(&mut *connection)
        .await
        .unwrap();
    (events, started.elapsed())
}

/// Reads every event as the projector reads them (the columns it reads, in position order),
/// through `COPY … TO STDOUT`; returns the time and the bytes.
async fn copy_scan(db: &TestDb) -> (Duration, usize) {
    use futures::StreamExt;
    let started = Instant::now();
    let mut connection = db.pool.acquire().await.unwrap();
    let mut stream = connection
        .copy_out_raw(
            "COPY (SELECT position, type, schema_version, recorded_at, actor, data::text \
             FROM events ORDER BY position) TO STDOUT",
        )
        .await
        .unwrap();
    let mut bytes = 0;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.unwrap().len();
    }
    (started.elapsed(), bytes)
}

async fn rebuild_tests(db: &TestDb) -> Duration {
    let started = Instant::now();
    runledger_projections::rebuild(&db.pool, &[ReadModel::Tests], |_| {})
        .await
        .expect("rebuild tests");
    started.elapsed()
}

/// The load: each connection asks for the tests list, then one test's page (expected to hold
/// `history` results), and again.
async fn http_load(
    base: &str,
    ids: &[String],
    (connections, seconds): (usize, u64),
    history: usize,
) -> Measured {
    let (base, ids) = (base.to_owned(), ids.to_vec());
    load(connections, seconds, move |worker, client| {
        let (base, ids) = (base.clone(), ids.clone());
        async move {
            let id = &ids[(worker * 7919 + rand_turn()) % ids.len()];
            let list = format!("{base}/api/v1/tests?sort=-flaky_score&limit=50");
            let page = format!("{base}/api/v1/tests/{id}?limit=50");
            let mut samples = Vec::new();
            for (url, field, expected) in [(list, "items", 50), (page, "history", history)] {
                let start = Instant::now();
                let body: Option<Counted> = match client.get(&url).bearer_auth(TOKEN).send().await {
                    Ok(response) if response.status().is_success() => response.json().await.ok(),
                    _ => None,
                };
                let ok = body.is_some_and(|b| b.count(field) == Some(expected));
                samples.push((start.elapsed().as_secs_f64() * 1e3, ok));
            }
            samples
        }
    })
    .await
}

/// An answer as the load checks it: how many items or history entries it holds, read without
/// building the rest (the load generator shares the machine with what it measures).
#[derive(serde::Deserialize)]
struct Counted {
    items: Option<Vec<serde::de::IgnoredAny>>,
    history: Option<Vec<serde::de::IgnoredAny>>,
}

impl Counted {
    fn count(&self, field: &str) -> Option<usize> {
        match field {
            "items" => self.items.as_ref().map(Vec::len),
            _ => self.history.as_ref().map(Vec::len),
        }
    }
}

/// A different number on each call, to spread the pages opened over the 100 tests.
fn rand_turn() -> usize {
    static TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `pgbench` with the list and the page's SQL as two equally weighted scripts: its tps is the
/// same mix of requests per second, answered by Postgres alone.
async fn pgbench(db: &TestDb, connections: usize, seconds: u64) -> f64 {
    let dir = std::env::temp_dir().join(format!("bench-insights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("list.sql");
    let detail = dir.join("detail.sql");
    std::fs::write(&list, LIST_SQL).unwrap();
    std::fs::write(&detail, detail_script()).unwrap();
    let output = Command::new("pgbench")
        // Prepared statements, as the gateway's sqlx runs them: the same SQL, planned once.
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &connections.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
        ])
        .arg("-f")
        .arg(&list)
        .arg("-f")
        .arg(&detail)
        .arg(&db.url)
        .output()
        .await
        .expect("pgbench (Debian's postgresql package)");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|tps| tps.parse().ok())
        })
        .expect("a tps line")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let db = TestDb::create().await;
    let settings = SuiteSettings {
        tests: args.tests,
        runs: args.runs,
        seed: 16,
    };
    let (events, loading) = load_log(&db, settings).await;
    eprintln!("loaded {events} events in {loading:?}");
    runledger_projections::rebuild(&db.pool, &ALL, |_| {})
        .await
        .expect("build the read models");
    // Rebuild and scan three times each, alternating, so neither has the page cache to itself
    // and a noisy neighbour hurts both alike; the best of each counts.
    let mut rebuilds = Vec::new();
    let mut scans = Vec::new();
    let mut scanned = 0;
    for _ in 0..3 {
        let (scan, bytes) = copy_scan(&db).await;
        scans.push(scan.as_secs_f64());
        scanned = bytes;
        rebuilds.push(rebuild_tests(&db).await.as_secs_f64());
    }
    let rebuild = rebuilds.iter().copied().fold(f64::INFINITY, f64::min);
    let scan = scans.iter().copied().fold(f64::INFINITY, f64::min);
    eprintln!("rebuild {rebuilds:?} s, COPY scan {scans:?} s ({scanned} bytes)");
    let results: i64 = sqlx::query_scalar("SELECT sum(cardinality(tests)) FROM rm_tests.reports")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(results, (args.tests * args.runs) as i64);
    sqlx::query("VACUUM (ANALYZE) rm_tests.tests, rm_tests.history, rm_tests.reports")
        .execute(&db.pool)
        .await
        .unwrap();

    // 100 tests to open, the flaky ones among them.
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT test_id FROM rm_tests.tests WHERE last_status <> 'skipped' \
         ORDER BY flaky_score DESC, test_id LIMIT 100",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE bench_ids (i int PRIMARY KEY, test_id uuid NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    for (i, id) in ids.iter().enumerate() {
        sqlx::query("INSERT INTO bench_ids VALUES ($1, $2)")
            .bind(i as i32 + 1)
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    insert_token(&db.pool).await.unwrap();
    let (mut gateway, base) = serve_gateway(&args.runledger, &db.url, "benchi")
        .await
        .expect("start the gateway (cargo build --release --bin runledger)");
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let http = http_load(
        &base,
        &ids,
        (args.connections, args.seconds),
        args.runs.min(50),
    )
    .await;
    let _ = gateway.start_kill();
    let _ = gateway.wait().await;
    let pg_tps = pgbench(&db, args.connections, args.seconds).await;
    if args.keep_db {
        eprintln!("kept database {}", db.name);
    } else {
        db.cleanup().await;
    }
    println!(
        "{}",
        json!({
            "bench": "insights",
            "tests": args.tests,
            "runs": args.runs,
            "results": results,
            "events": events,
            "rebuild_s": rebuild,
            "copy_scan_s": scan,
            "copy_scan_bytes": scanned,
            "rebuild_ratio": scan / rebuild,
            "connections": args.connections,
            "requests": http.requests,
            "requests_per_s": http.per_s,
            "p50_ms": http.p50_ms,
            "p99_ms": http.p99_ms,
            "errors": http.errors,
            "pgbench_tps": pg_tps,
            "query_ratio": http.per_s / pg_tps,
            "target": {"p99_ms": 20, "query_ratio": 0.7, "rebuild_ratio": 0.5},
        })
    );
}
