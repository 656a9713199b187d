//! `runledger run ...`: start, cancel, list, show and follow runs from a terminal or a CI job.
//! Commands go over NATS like any caller's; `list` and `show` read the read models, and `log`
//! and `start --wait` the log, all through runledger-readmodel (no SQL here), then follow the
//! events NATS carries.

use crate::payloads::{RunRequest, start_run};
use crate::send::command_sender;
use crate::settings::Settings;
use anyhow::Context;
use clap::{Args, Subcommand};
use runledger_bus::RunFeed;
use runledger_readmodel::history::{self, Filters, Sort};
use runledger_readmodel::junit;
use runledger_readmodel::rerun::{self as reruns, RerunSelection};
use runledger_readmodel::runs as run_reads;
use runledger_types::command::{CancelRun, RerunOnly, StartRun};
use runledger_types::{CommandId, RunId, TestId};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// `runledger run ...`
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Start a run; with --wait, exit 0 only if it passes.
    ///
    /// Example: `runledger run start 0193a000-0000-7000-8000-000000000003 --wait --follow --junit-out report.xml`
    Start(StartArgs),
    /// Run a finished run's failures (or some of its tests) again, as a new run linked to it;
    /// with --wait, exit 0 only if the new run passes.
    ///
    /// Example: `runledger run rerun 01a2… --failed --follow --junit-out rerun.xml`
    Rerun(RerunArgs),
    /// Ask for a run to be cancelled.
    ///
    /// Example: `runledger run cancel 01a2… --reason "wrong branch"`
    Cancel(CancelArgs),
    /// The newest runs, one line each.
    ///
    /// Example: `runledger run list --status failed --limit 20`
    List(ListArgs),
    /// One run as JSON, with its per-test results.
    ///
    /// Example: `runledger run show 01a2…`
    Show(ShowArgs),
    /// A run's output; with -f, follow it until the run ends.
    ///
    /// Example: `runledger run log 01a2… -f`
    Log(LogArgs),
    /// What changed from one run to another, test by test: newly failing, fixed, still
    /// failing, added, removed, and the biggest duration changes.
    ///
    /// Example: `runledger run compare 01a2… 01b7…`
    Compare(crate::insights::CompareArgs),
}

/// `runledger run start`
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The test case to run.
    pub test_case_id: Uuid,
    /// Run on this machine.
    #[arg(long)]
    pub machine: Option<Uuid>,
    /// Run on a machine carrying this label (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Run in this venv.
    #[arg(long)]
    pub venv: Option<Uuid>,
    /// NAME=VALUE for the run's environment (repeatable).
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
    /// Waiting for the run's end.
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// How `start` and `rerun` wait for the new run.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait for the run to end; the exit code says whether it passed.
    #[arg(long)]
    pub wait: bool,
    /// Print the run's output while it runs (implies --wait).
    #[arg(long)]
    pub follow: bool,
    /// Write the run's tests as a JUnit XML report here once it ends (implies --wait).
    #[arg(long)]
    pub junit_out: Option<PathBuf>,
}

/// `runledger run rerun`
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("selection").required(true).args(["failed", "tests"]))]
pub struct RerunArgs {
    /// The finished run to rerun.
    pub run_id: Uuid,
    /// Only the tests that failed or errored in its last attempt.
    #[arg(long)]
    pub failed: bool,
    /// Only this test (its id, as `runledger tests list` shows it; repeatable).
    #[arg(long = "test")]
    pub tests: Vec<Uuid>,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
    /// Waiting for the run's end.
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub(crate) fn parse_env(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {raw:?}"))
}

/// `runledger run cancel`
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run.
    pub run_id: Uuid,
    /// Why, for the audit history.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
}

/// `runledger run list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs with this status.
    #[arg(long)]
    pub status: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// `runledger run show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run.
    pub run_id: Uuid,
}

/// `runledger run log`
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The run.
    pub run_id: Uuid,
    /// Follow the output until the run ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

/// Runs one `run` subcommand.
pub async fn run(settings: &Settings, command: RunCommand) -> anyhow::Result<()> {
    match command {
        RunCommand::Start(args) => start(settings, args).await,
        RunCommand::Rerun(args) => rerun(settings, args).await,
        RunCommand::Cancel(args) => cancel(settings, args).await,
        RunCommand::List(args) => list(settings, args).await,
        RunCommand::Show(args) => show(settings, args).await,
        RunCommand::Log(args) => log(settings, args).await,
        RunCommand::Compare(args) => crate::insights::compare(&pool(settings).await?, args).await,
    }
}

async fn start(settings: &Settings, args: StartArgs) -> anyhow::Result<()> {
    let run_id = Uuid::now_v7();
    let request = RunRequest {
        test_case_id: args.test_case_id,
        machine: args.machine,
        labels: args.labels,
        venv: args.venv,
        env: args.env,
    };
    let command = start_run(request, run_id)?;
    submit(settings, command, &args.actor, &args.wait).await
}

/// `start_run` of a new run linked to the finished one, for its test case with the env,
/// labels and machine it asked for (read from the runs read model).
async fn rerun(settings: &Settings, args: RerunArgs) -> anyhow::Result<()> {
    let pool = pool(settings).await?;
    let old = match run_reads::run(&pool, args.run_id).await? {
        Some(run) if run.status.is_final() => Some(run),
        // A run that just ended may not have reached the read models yet.
        _ => {
            caught_up_with_log(&pool).await?;
            run_reads::run(&pool, args.run_id).await?
        }
    }
    .with_context(|| format!("no run {} in the read models", args.run_id))?;
    let selection = RerunSelection {
        only: args.failed.then_some(RerunOnly::Failed),
        tests: args.tests.into_iter().map(TestId).collect(),
    };
    let command = reruns::rerun(&old, RunId(Uuid::now_v7()), selection)?;
    submit(settings, command, &args.actor, &args.wait).await
}

/// Waits (up to [`CATCH_UP`]) until the read models include the log's head as it is now.
async fn caught_up_with_log(pool: &runledger_readmodel::PgPool) -> anyhow::Result<()> {
    let head = runledger_readmodel::log_head(pool).await?;
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    while runledger_readmodel::projected_position(pool).await? < head {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the read models did not reach position {head} within {CATCH_UP:?}: is a projector running?"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// How long `run rerun` waits for the read models to show a run that just ended.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Sends `command` and prints the new run's id; then, as `wait` asks, follows the run to its
/// end, writes its JUnit report and exits 0 only if it passed.
async fn submit(
    settings: &Settings,
    command: StartRun,
    actor: &str,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let run_id = command.run_id.0;
    let waits = wait.wait || wait.follow || wait.junit_out.is_some();
    // Subscribed before the command goes out, so no event of the run can be missed.
    let events = if waits {
        Some(follow(settings, run_id).await?)
    } else {
        None
    };
    let sender = command_sender(settings, Duration::from_secs(10)).await?;
    let outcome = sender
        .send(CommandId::new(), actor, &command)
        .await
        .context("no outcome: is `runledger serve --components handler` running?")?;
    if let Some(error) = outcome.error {
        anyhow::bail!("start_run rejected: {}: {}", error.code, error.message);
    }
    println!("{run_id}");
    let Some(mut feed) = events else {
        return Ok(());
    };
    let end = until_finished(&mut feed, wait.follow, 0).await?;
    if let Some(path) = &wait.junit_out {
        // A large report comes in parts before run_finished: the log has all of them.
        let tests = run_reads::run_tests(&pool(settings).await?, run_id)
            .await?
            .unwrap_or_default();
        std::fs::write(path, junit_xml(run_id, &end, &tests))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    finished(run_id, &end)
}

/// Reports how a run ended; an error (exit code 1) unless it passed.
fn finished(run_id: Uuid, end: &Value) -> anyhow::Result<()> {
    let status = end["status"].as_str().unwrap_or("unknown");
    eprintln!(
        "run {run_id} {status}{}",
        end["reason"]
            .as_str()
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default()
    );
    if status != "passed" {
        anyhow::bail!("run {run_id} did not pass ({status})");
    }
    Ok(())
}

/// Subscribes to the run's events (before anything about it is read or sent).
async fn follow(settings: &Settings, run_id: Uuid) -> anyhow::Result<RunFeed> {
    let client = settings.nats("runledger-cli").await?;
    let feed = RunFeed::subscribe(&client, &settings.names()?, run_id).await?;
    client.flush().await?;
    Ok(feed)
}

/// Prints output chunks numbered after `after` (when `print`) until `run_finished`; returns its
/// data.
async fn until_finished(feed: &mut RunFeed, print: bool, after: u64) -> anyhow::Result<Value> {
    let mut last = after;
    let mut stdout = std::io::stdout();
    loop {
        let event = feed.next().await.context("the NATS subscription ended")?;
        match event.event_type.as_str() {
            "run_output" => {
                let seq = event.data["seq"].as_u64().unwrap_or(0);
                if print && seq > last {
                    stdout.write_all(event.data["text"].as_str().unwrap_or("").as_bytes())?;
                    stdout.flush()?;
                }
                last = last.max(seq);
            }
            "run_finished" => return Ok(event.data),
            _ => {}
        }
    }
}

/// The run's per-test results as a JUnit XML report (one testsuite).
fn junit_xml(run_id: Uuid, end: &Value, tests: &[Value]) -> String {
    let name = format!("runledger run {run_id}");
    junit::run_report(junit::Suite {
        name: &name,
        status: end["status"].as_str(),
        reason: end["reason"].as_str(),
        tests,
    })
}

async fn cancel(settings: &Settings, args: CancelArgs) -> anyhow::Result<()> {
    let sender = command_sender(settings, Duration::from_secs(10)).await?;
    let command = CancelRun {
        run_id: RunId::from(args.run_id),
        reason: args.reason,
    };
    let outcome = sender
        .send(CommandId::new(), &args.actor, &command)
        .await
        .context("no outcome: is `runledger serve --components handler` running?")?;
    if let Some(error) = outcome.error {
        anyhow::bail!("cancel_run rejected: {}: {}", error.code, error.message);
    }
    eprintln!("cancellation of {} accepted", args.run_id);
    Ok(())
}

async fn pool(settings: &Settings) -> anyhow::Result<runledger_readmodel::PgPool> {
    settings
        .database
        .connect(crate::database::DbUser::Owner, 2)
        .await
}

async fn list(settings: &Settings, args: ListArgs) -> anyhow::Result<()> {
    let pool = pool(settings).await?;
    // A status no run can have lists nothing.
    let statuses = match args.status.as_deref() {
        Some(raw) => runledger_readmodel::rows::run_status(raw)
            .ok()
            .map(|status| vec![status]),
        None => Some(Vec::new()),
    };
    let rows = match statuses {
        Some(statuses) => {
            let filters = Filters {
                statuses,
                ..Filters::default()
            };
            let limit = args.limit.clamp(1, 10_000);
            history::page(&pool, &filters, Sort::default(), limit, None)
                .await?
                .rows
        }
        None => Vec::new(),
    };
    println!(
        "{:<36}  {:<9}  {:<12}  {:<20}  {:<16}  {:<20}  DURATION",
        "RUN", "STATUS", "USER", "TEST CASE", "MACHINE", "QUEUED"
    );
    for run in rows {
        println!(
            "{:<36}  {:<9}  {:<12}  {:<20}  {:<16}  {:<20}  {}",
            run.run_id,
            run.status.as_str(),
            run.requested_by,
            run.test_case_name.unwrap_or_default(),
            run.machine_name.unwrap_or_default(),
            run.queued_at.format("%Y-%m-%d %H:%M:%S"),
            run.duration_ms
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn show(settings: &Settings, args: ShowArgs) -> anyhow::Result<()> {
    let pool = pool(settings).await?;
    let row = run_reads::run_document(&pool, args.run_id).await?;
    let mut row = row.with_context(|| format!("no run {}", args.run_id))?;
    let tests = run_reads::run_tests(&pool, args.run_id)
        .await?
        .map_or_else(|| json!([]), Value::Array);
    if let Some(object) = row.as_object_mut() {
        object.insert("tests".into(), tests);
    }
    println!("{}", serde_json::to_string_pretty(&row)?);
    Ok(())
}

/// Output chunks read from the log at a time by `run log`.
const HISTORY_PAGE: i64 = 256;

async fn log(settings: &Settings, args: LogArgs) -> anyhow::Result<()> {
    // Subscribed before reading the log, so nothing committed in between is lost.
    let mut feed = if args.follow {
        Some(follow(settings, args.run_id).await?)
    } else {
        None
    };
    let pool = pool(settings).await?;
    let mut stdout = std::io::stdout();
    let mut last = 0;
    loop {
        let page = run_reads::run_output_after(&pool, args.run_id, last, HISTORY_PAGE).await?;
        let before = last;
        for record in &page {
            if record.event_type == "run_finished" {
                return finished(args.run_id, &record.data);
            }
            stdout.write_all(record.data["text"].as_str().unwrap_or("").as_bytes())?;
            last = record.data["seq"].as_u64().unwrap_or(last);
        }
        if (page.len() as i64) < HISTORY_PAGE || last == before {
            break;
        }
    }
    stdout.flush()?;
    match feed.as_mut() {
        Some(feed) => {
            let end = until_finished(feed, true, last).await?;
            finished(args.run_id, &end)
        }
        None => Ok(()),
    }
}
