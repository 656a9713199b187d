//! `runledger tests ...`: insight across runs from a terminal: which tests fail, which are flaky
//! and why, how a test fared run after run, and a test case's trend. Reads the `tests` and
//! `runs` read models through runledger-readmodel, as the gateway's `/api/v1/tests` routes do.

mod compare;
mod quarantine;

pub use compare::{CompareArgs, compare};

use crate::settings::Settings;
use anyhow::Context;
use clap::{Args, Subcommand};
use runledger_readmodel::rows::FLAKY_WINDOW;
use runledger_readmodel::test_insights::{self as insights, Bucket, Filters, TestSort};
use uuid::Uuid;

/// `runledger tests ...`
#[derive(Debug, Subcommand)]
pub enum TestsCommand {
    /// Tests across runs, the most failing first (or as --sort says), one line each.
    ///
    /// Example: `runledger tests list --flaky`, or
    /// `runledger tests list --test-case 0193a000-… --sort -duration_p90 --limit 10`
    List(ListArgs),
    /// One test: its figures, its latest results, and why it counts as flaky.
    ///
    /// Example: `runledger tests show 5f0c…  --history 20 --window 50`
    Show(ShowArgs),
    /// A test case's finished runs per hour, day or week: pass rate and durations.
    ///
    /// Example: `runledger tests trend 0193a000-… --bucket day --since 2026-11-01T00:00:00Z`
    Trend(TrendArgs),
    /// Quarantine a test: its failures are still recorded and shown, but do not fail runs.
    ///
    /// Example: `runledger tests quarantine 5f0c… --reason "flaky on Windows, LAB-12" --until 2026-12-31T00:00:00Z`
    Quarantine(quarantine::QuarantineArgs),
    /// End a test's quarantine: its failures fail runs again.
    ///
    /// Example: `runledger tests release 5f0c…`
    Release(quarantine::ReleaseArgs),
}

/// `runledger tests list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tests of this test case.
    #[arg(long = "test-case")]
    pub test_case: Option<Uuid>,
    /// Only flaky tests.
    #[arg(long)]
    pub flaky: bool,
    /// Only quarantined tests.
    #[arg(long)]
    pub quarantined: bool,
    /// Only tests whose last result has this status (passed, failed, error, skipped).
    #[arg(long)]
    pub status: Option<String>,
    /// Only tests whose name or classname holds this text.
    #[arg(long)]
    pub search: Option<String>,
    /// -fail_rate (default), -flaky_score, -duration_p90, name or last_run_at (a leading -
    /// for descending).
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// `runledger tests show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The test (`uuid_v5` of test case, classname and name; `tests list` prints it).
    pub test_id: Uuid,
    /// How many of its latest results to print.
    #[arg(long, default_value_t = 20)]
    pub history: i64,
    /// The flaky window, in results (1 to 50).
    #[arg(long, default_value_t = FLAKY_WINDOW)]
    pub window: usize,
}

/// `runledger tests trend`
#[derive(Debug, Args)]
pub struct TrendArgs {
    /// The test case.
    pub test_case_id: Uuid,
    /// hour, day or week.
    #[arg(long, default_value = "day")]
    pub bucket: String,
    /// Runs finished at or after this (RFC 3339).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Runs finished before this (RFC 3339).
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs one `tests` subcommand.
pub async fn run(settings: &Settings, command: TestsCommand) -> anyhow::Result<()> {
    match command {
        TestsCommand::List(args) => list(&pool(settings).await?, args).await,
        TestsCommand::Show(args) => show(&pool(settings).await?, args).await,
        TestsCommand::Trend(args) => trend(&pool(settings).await?, args).await,
        TestsCommand::Quarantine(args) => quarantine::quarantine(settings, args).await,
        TestsCommand::Release(args) => quarantine::release(settings, args).await,
    }
}

async fn pool(settings: &Settings) -> anyhow::Result<runledger_readmodel::PgPool> {
    settings
        .database
        .connect(crate::database::DbUser::Owner, 2)
        .await
}

async fn list(pool: &runledger_readmodel::PgPool, args: ListArgs) -> anyhow::Result<()> {
    let filters = Filters {
        test_case_id: args.test_case,
        last_status: args.status,
        flaky: args.flaky.then_some(true),
        text: args.search,
        quarantined: args.quarantined.then_some(true),
    };
    let sort = TestSort::parse(args.sort.as_deref())?;
    let page = insights::page(pool, &filters, sort, args.limit.clamp(1, 10_000), None).await?;
    println!(
        "{:<36}  {:<7}  {:>5}  {:>6}  {:>6}  {:>9}  TEST",
        "TEST_ID", "LAST", "RUNS", "FAIL%", "FLAKY", "P90"
    );
    for test in page.rows {
        let flaky = if test.flaky {
            format!("{:.2}", test.flaky_score)
        } else {
            "-".to_owned()
        };
        let quarantined = if test.quarantined {
            "  [quarantined]"
        } else {
            ""
        };
        println!(
            "{:<36}  {:<7}  {:>5}  {:>5.1}%  {:>6}  {:>9}  {}{quarantined}",
            test.test_id,
            test.last_status,
            test.runs,
            test.fail_rate * 100.0,
            flaky,
            millis(test.duration_p90_ms),
            full_name(&test.classname, &test.name)
        );
    }
    Ok(())
}

async fn show(pool: &runledger_readmodel::PgPool, args: ShowArgs) -> anyhow::Result<()> {
    let detail = insights::detail(pool, args.test_id, args.window, args.history.max(1), None)
        .await?
        .with_context(|| format!("no test {} (no result names it)", args.test_id))?;
    let test = &detail.test;
    println!("{}", full_name(&test.classname, &test.name));
    println!("  test id       {}", test.test_id);
    println!("  test case     {}", test.test_case_id);
    println!(
        "  results       {} ({} passed, {} failed, {} errors, {} skipped)",
        test.runs, test.passed, test.failed, test.errors, test.skipped
    );
    println!(
        "  pass rate     {}",
        test.pass_rate
            .map_or_else(|| "-".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
    );
    println!(
        "  last          {} since {}",
        test.last_status,
        test.last_changed_at.format("%Y-%m-%d %H:%M:%S")
    );
    println!(
        "  first seen    {}",
        test.first_seen_at.format("%Y-%m-%d %H:%M:%S")
    );
    if let (Some(at), Some(run)) = (test.last_failure_at, test.last_failure_run_id) {
        println!(
            "  last failure  {} in run {run}: {}",
            at.format("%Y-%m-%d %H:%M:%S"),
            test.last_failure_message.as_deref().unwrap_or("")
        );
    }
    println!(
        "  duration      p50 {}, p90 {}",
        millis(test.duration_p50_ms),
        millis(test.duration_p90_ms)
    );
    if let Some(quarantine) = &detail.quarantine {
        println!(
            "  quarantined   since {} by {}{}: {}",
            quarantine.since.format("%Y-%m-%d %H:%M:%S"),
            quarantine.by,
            quarantine
                .until
                .map(|until| format!(", until {}", until.format("%Y-%m-%d %H:%M:%S")))
                .unwrap_or_default(),
            quarantine.reason
        );
    }
    let flakiness = &detail.flakiness;
    println!(
        "  flaky         {} (score {:.2} over the last {} results)",
        if flakiness.flaky { "yes" } else { "no" },
        flakiness.score,
        flakiness.window
    );
    for flip in &flakiness.flips {
        println!(
            "    {} run {} #{} -> run {} #{}{}",
            if flip.fixed {
                "failed -> passed"
            } else {
                "passed -> failed"
            },
            flip.from_run,
            flip.from_attempt,
            flip.to_run,
            flip.to_attempt,
            if flip.same_run { " (same run)" } else { "" }
        );
    }
    println!("  history (newest first):");
    for entry in &detail.history {
        println!(
            "    {}  {:<7}  {:>9}  run {} #{}  {}",
            entry.finished_at.format("%Y-%m-%d %H:%M:%S"),
            entry.status,
            millis(Some(entry.duration_ms)),
            entry.run_id,
            entry.attempt,
            entry.machine_name.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

async fn trend(pool: &runledger_readmodel::PgPool, args: TrendArgs) -> anyhow::Result<()> {
    let bucket = Bucket::parse(Some(&args.bucket))?;
    let points = insights::trend(pool, args.test_case_id, bucket, args.since, args.until).await?;
    println!(
        "{:<20}  {:>5}  {:>6}  {:>6}  {:>5}  {:>6}  {:>9}  {:>9}",
        "BUCKET", "RUNS", "PASSED", "FAILED", "ERROR", "PASS%", "P50", "P90"
    );
    for point in points {
        println!(
            "{:<20}  {:>5}  {:>6}  {:>6}  {:>5}  {:>5.1}%  {:>9}  {:>9}",
            point.bucket.format("%Y-%m-%d %H:%M"),
            point.runs,
            point.passed,
            point.failed,
            point.error,
            point.pass_rate * 100.0,
            millis(point.duration_p50_ms),
            millis(point.duration_p90_ms)
        );
    }
    Ok(())
}

fn full_name(classname: &str, name: &str) -> String {
    if classname.is_empty() {
        name.to_owned()
    } else {
        format!("{classname}::{name}")
    }
}

fn millis(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"))
}
