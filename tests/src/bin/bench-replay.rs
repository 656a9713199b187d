//! `replay` benchmark: a synthetic but realistic log of 1,000,000 events (runs with
//! their lifecycle and output, venv leases and releases, across 100 machines) loaded with COPY,
//! then a full rebuild of every read model in-process (`runledger_projections::rebuild`),
//! reported as events/s. Baseline in the same run: `COPY (SELECT * FROM events ORDER BY
//! position) TO STDOUT` drained by a client that discards it, once before and once after the
//! rebuild (the mean of the two is used: the machine is noisy).
//!
//! Run: `cargo build --release -p runledger-tests --bin bench-replay && target/release/bench-replay`
//! Prints human lines on stderr and, last, a JSON line `{"bench":"replay",...}` on stdout.

use anyhow::{Context, ensure};
use clap::Parser;
use futures::StreamExt;
use runledger_projections::RebuildProgress;
use runledger_store::PgPool;
use runledger_test_support::TestDb;
use runledger_tests::peak_rss_kib;
use runledger_tests::replay::{self, Loaded, SimSettings};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Events in the generated log.
    #[arg(long, default_value_t = 1_000_000)]
    events: i64,
    /// Machines (3–5 venvs each, 4 on average).
    #[arg(long, default_value_t = 100)]
    machines: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the database (its name is printed) instead of dropping it.
    #[arg(long)]
    keep: bool,
    /// Also time reading and decoding the whole log alone (the rebuild's input side).
    #[arg(long)]
    phases: bool,
    /// Also time `runledger projections rebuild` (the shipped binary, with its allocator) on the
    /// same log, e.g. `--runledger target/release/runledger`.
    #[arg(long)]
    runledger: Option<String>,
}

/// Generates and loads the log; prints what it holds.
async fn generate(db: &TestDb, args: &Args) -> anyhow::Result<Loaded> {
    let settings = SimSettings {
        machines: args.machines,
        test_cases: 10,
        in_flight: args.machines * 2,
        executors: 4,
        seed: args.seed,
    };
    let loaded = replay::load(&db.pool, settings, args.events).await?;
    let counts: Vec<String> = loaded
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!(
        "generated and loaded {} events ({:.0} MiB of COPY text) in {:.1} s, VACUUM ANALYZE {:.1} s; {} runs still queued at the end\n  {}",
        args.events,
        loaded.bytes as f64 / 1048576.0,
        loaded.copy.as_secs_f64(),
        loaded.vacuum.as_secs_f64(),
        loaded.still_queued,
        counts.join(", ")
    );
    Ok(loaded)
}

/// `COPY (SELECT * FROM events ORDER BY position) TO STDOUT`, drained and discarded: rows/s.
async fn baseline(pool: &PgPool, rows: i64) -> anyhow::Result<f64> {
    let mut connection = pool.acquire().await?;
    let started = Instant::now();
    let mut bytes = 0_usize;
    let mut stream = connection
        .copy_out_raw("COPY (SELECT * FROM events ORDER BY position) TO STDOUT")
        .await?;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "baseline: COPY TO STDOUT of {rows} rows ({:.0} MiB) in {seconds:.2} s: {:.0} rows/s",
        bytes as f64 / 1048576.0,
        rows as f64 / seconds
    );
    Ok(rows as f64 / seconds)
}

/// The full rebuild of every read model; returns events/s.
async fn rebuild(pool: &PgPool, events: i64) -> anyhow::Result<f64> {
    let mut batches: Vec<RebuildProgress> = Vec::new();
    let report = runledger_projections::rebuild(pool, &runledger_readmodel::ALL, |progress| {
        batches.push(progress)
    })
    .await
    .context("rebuilding the read models")?;
    ensure!(
        report.events == events,
        "rebuild applied {} events",
        report.events
    );
    let seconds = report.elapsed.as_secs_f64();
    // The last progress call comes after indexes and swap; the one before ends the apply phase.
    let applied = batches
        .iter()
        .rev()
        .nth(1)
        .map_or(0.0, |p| p.elapsed.as_secs_f64());
    let rate = |from: &RebuildProgress, to: &RebuildProgress| {
        (to.applied - from.applied) as f64 / (to.elapsed - from.elapsed).as_secs_f64().max(1e-9)
    };
    let tenth = batches.len() / 10;
    if tenth >= 1 && batches.len() > 2 * tenth + 1 {
        let last = batches.len() - 2;
        eprintln!(
            "rebuild batches: first tenth {:.0} events/s, last tenth {:.0} events/s",
            rate(&batches[0], &batches[tenth]),
            rate(&batches[last - tenth], &batches[last])
        );
    }
    eprintln!(
        "rebuild: {events} events in {seconds:.2} s ({:.0} events/s); applying {applied:.2} s, indexes + swap {:.2} s",
        events as f64 / seconds,
        seconds - applied
    );
    Ok(events as f64 / seconds)
}

/// `runledger projections rebuild` as a process: events/s over its wall time (start included).
async fn cli_rebuild(runledger: &str, db: &TestDb, events: i64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let output = tokio::process::Command::new(runledger)
        .args(["projections", "rebuild"])
        .env("DATABASE_URL", &db.url)
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {runledger}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "{runledger} projections rebuild failed: {said}"
    );
    eprintln!("cli: {} ({seconds:.2} s wall)", said.trim());
    Ok(events as f64 / seconds)
}

/// Fails unless the read models hold what the generator wrote and stand at the log's head.
async fn check(pool: &PgPool, loaded: &Loaded, head: i64) -> anyhow::Result<()> {
    let expectations = [
        ("SELECT count(*) FROM rm_runs.runs", "run_requested"),
        ("SELECT count(*) FROM rm_runs.run_output", "run_output"),
        (
            "SELECT sum(output_chunks)::bigint FROM rm_runs.runs",
            "run_output",
        ),
        (
            "SELECT count(*) FROM rm_runs.runs WHERE finished_at IS NOT NULL",
            "run_finished",
        ),
    ];
    for (sql, event_type) in expectations {
        let found: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
        let wanted = loaded.count(event_type);
        ensure!(
            found == wanted,
            "{sql}: {found}, but the log has {wanted} {event_type}"
        );
    }
    for status in runledger_readmodel::status(pool).await? {
        let (name, at) = (status.name, status.position);
        ensure!(at == head, "read model {name} is at {at}, not {head}");
    }
    eprintln!(
        "check: {} runs ({} queued at some point, {} finished), {} output rows; every read model at {head}",
        loaded.count("run_requested"),
        loaded.count("run_queued"),
        loaded.count("run_finished"),
        loaded.count("run_output")
    );
    Ok(())
}

/// Reads and decodes the whole log in pages of 10,000 as the rebuild does, without applying.
async fn phases(pool: &PgPool, head: i64) -> anyhow::Result<()> {
    let (mut read, mut position) = (Duration::ZERO, 0);
    while position < head {
        let started = Instant::now();
        let facts = runledger_projections::read::read_facts(pool, position, 10_000).await?;
        read += started.elapsed();
        position = facts.last().map_or(head, |fact| fact.position);
    }
    eprintln!(
        "phases: reading and decoding the log {:.2} s ({:.0} events/s)",
        read.as_secs_f64(),
        head as f64 / read.as_secs_f64(),
    );
    Ok(())
}

async fn bench(db: &TestDb, args: &Args) -> anyhow::Result<String> {
    let started = Instant::now();
    let loaded = generate(db, args).await?;
    let load_s = started.elapsed().as_secs_f64();
    let load_rss = peak_rss_kib("self").unwrap_or(0);
    // Resets VmHWM, so the next reading is the rebuild's own peak.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    // Each measured phase starts after a CHECKPOINT (untimed): otherwise the one before leaves
    // Postgres flushing dirty buffers (a rebuild writes ≈ 420 MB of WAL) into the next.
    let checkpoint = || sqlx::query("CHECKPOINT").execute(&db.pool);
    checkpoint().await?;
    let first = baseline(&db.pool, args.events).await?;
    checkpoint().await?;
    let events_per_s = rebuild(&db.pool, args.events).await?;
    let rss = peak_rss_kib("self").unwrap_or(0);
    let mut cli = None;
    if let Some(runledger) = &args.runledger {
        checkpoint().await?;
        cli = Some(cli_rebuild(runledger, db, args.events).await?);
    }
    checkpoint().await?;
    let second = baseline(&db.pool, args.events).await?;
    check(&db.pool, &loaded, args.events).await?;
    if args.phases {
        phases(&db.pool, args.events).await?;
    }
    let baseline = (first + second) / 2.0;
    let ratio = events_per_s / baseline;
    eprintln!(
        "baseline mean {baseline:.0} rows/s (runs: {first:.0}, {second:.0}; the machine is shared and noisy)"
    );
    eprintln!(
        "replay: {events_per_s:.0} events/s, ratio {ratio:.3}; peak RSS {} MiB during the rebuild{}, {} MiB while generating",
        rss / 1024,
        if reset {
            ""
        } else {
            " (VmHWM not reset: includes generation)"
        },
        load_rss / 1024
    );
    let cli = cli.map_or(String::new(), |rate| {
        format!(",\"cli_events_per_s\":{rate:.0}")
    });
    Ok(format!(
        "{{\"bench\":\"replay\",\"events\":{},\"events_per_s\":{events_per_s:.0},\"baseline_rows_per_s\":{baseline:.0},\"ratio\":{ratio:.3},\"baseline_runs\":[{first:.0},{second:.0}],\"peak_rss_mib\":{},\"load_s\":{load_s:.1},\"copy_mib\":{}{cli}}}",
        args.events,
        rss / 1024,
        loaded.bytes >> 20
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    runledger_tests::init_tracing();
    let db = TestDb::create().await;
    eprintln!("database {}", db.name);
    let result = bench(&db, &args).await;
    if args.keep {
        eprintln!("kept database {} ({})", db.name, db.url);
    } else {
        db.cleanup().await;
    }
    println!("{}", result?);
    Ok(())
}
