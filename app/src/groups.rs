//! `runledger group ...`: start a run group (a suite split into shards by past durations, or a
//! matrix of combinations), follow it with a bar per member, write its merged JUnit report,
//! list, show and cancel groups. Commands go over NATS; reads go through runledger-readmodel.

use crate::payloads::{env, field, fields};
use crate::send::send_accepted;
use crate::settings::Settings;
use anyhow::Context;
use clap::{Args, Subcommand};
use runledger_readmodel::groups::{self as group_reads, GroupDetail, GroupFilters};
use runledger_readmodel::rows::RunRow;
use runledger_types::command::{CancelGroup, Matrix, StartGroup};
use runledger_types::{GroupId, GroupStatus, MachineId, TestCaseId};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `runledger group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Start a group: the suite split into --shards runs by past durations, or one run per
    /// combination of the --matrix-* dimensions; with --wait, exit 0 only if every member
    /// passed.
    ///
    /// Example: `runledger group start 0193a000-0000-7000-8000-000000000003 --shards 8 --follow --junit-out report.xml`
    Start(StartArgs),
    /// Ask for every member of a group to be cancelled.
    ///
    /// Example: `runledger group cancel 01a2… --reason "wrong branch"`
    Cancel(CancelArgs),
    /// The newest groups, one line each.
    ///
    /// Example: `runledger group list --status failed --limit 20`
    List(ListArgs),
    /// One group as JSON: its plan and its members' runs.
    ///
    /// Example: `runledger group show 01a2…`
    Show(ShowArgs),
    /// A group's merged JUnit report (one suite per member).
    ///
    /// Example: `runledger group junit 01a2… --out report.xml`
    Junit(JunitArgs),
}

/// `runledger group start`
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("layout").required(true)
    .args(["shards", "matrix_labels", "matrix_python", "matrix_env"]).multiple(true))]
pub struct StartArgs {
    /// The test case to run.
    pub test_case_id: Uuid,
    /// Split the suite into this many runs (1–64) by its tests' past durations.
    #[arg(long, conflicts_with_all = ["matrix_labels", "matrix_python", "matrix_env"])]
    pub shards: Option<u32>,
    /// A matrix value of machine labels, comma-separated (repeatable: one combination each).
    #[arg(long = "matrix-labels")]
    pub matrix_labels: Vec<String>,
    /// A matrix Python version, such as 3.11 (repeatable).
    #[arg(long = "matrix-python")]
    pub matrix_python: Vec<String>,
    /// A matrix environment, NAME=VALUE pairs comma-separated (repeatable).
    #[arg(long = "matrix-env")]
    pub matrix_env: Vec<String>,
    /// Every member on this machine.
    #[arg(long)]
    pub machine: Option<Uuid>,
    /// Every member on machines carrying this label (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// NAME=VALUE for every member's environment (repeatable).
    #[arg(long = "env", value_parser = crate::run::parse_env)]
    pub env: Vec<(String, String)>,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
    /// Wait for the group to end; the exit code says whether it passed.
    #[arg(long)]
    pub wait: bool,
    /// Show a bar per member while it runs (implies --wait).
    #[arg(long)]
    pub follow: bool,
    /// Write the merged JUnit report here once it ends (implies --wait).
    #[arg(long)]
    pub junit_out: Option<PathBuf>,
}

/// `runledger group cancel`
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The group.
    pub group_id: Uuid,
    /// Why, for the audit history.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
}

/// `runledger group list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only groups with this status (running, passed, failed, error, cancelled).
    #[arg(long)]
    pub status: Option<String>,
    /// Most groups shown.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// `runledger group show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The group.
    pub group_id: Uuid,
}

/// `runledger group junit`
#[derive(Debug, Args)]
pub struct JunitArgs {
    /// The group.
    pub group_id: Uuid,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs one `runledger group` command.
pub async fn run(settings: &Settings, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Start(args) => start(settings, args).await,
        GroupCommand::Cancel(args) => cancel(settings, args).await,
        GroupCommand::List(args) => list(settings, args).await,
        GroupCommand::Show(args) => show(settings, args).await,
        GroupCommand::Junit(args) => junit(settings, args).await,
    }
}

/// `start_group` from the arguments; a value the payload refuses stops here, as the handler
/// would answer it.
fn start_group(args: &StartArgs, group_id: Uuid) -> anyhow::Result<StartGroup> {
    let matrix = match args.shards {
        Some(_) => None,
        None => Some(Matrix {
            labels: args
                .matrix_labels
                .iter()
                .map(|set| {
                    let labels = set.split(',').map(|l| l.trim().to_owned()).collect();
                    fields::<StartGroup, _>("matrix.labels", labels)
                })
                .collect::<anyhow::Result<_>>()?,
            python: args
                .matrix_python
                .iter()
                .map(|raw| field::<StartGroup, _>("matrix.python", raw.clone()))
                .collect::<anyhow::Result<_>>()?,
            env: args
                .matrix_env
                .iter()
                .map(|set| {
                    let pairs = set
                        .split(',')
                        .map(crate::run::parse_env)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|err| anyhow::anyhow!("--matrix-env: {err}"))?;
                    env::<StartGroup, _>(pairs)
                })
                .collect::<anyhow::Result<Vec<BTreeMap<_, _>>>>()?,
        }),
    };
    Ok(StartGroup {
        group_id: GroupId::from(group_id),
        test_case_id: TestCaseId::from(args.test_case_id),
        shards: args.shards,
        matrix,
        machine_id: args.machine.map(MachineId::from),
        labels: fields::<StartGroup, _>("labels", args.labels.clone())?,
        env: env::<StartGroup, _>(args.env.clone())?,
    })
}

async fn start(settings: &Settings, args: StartArgs) -> anyhow::Result<()> {
    let group_id = Uuid::now_v7();
    let command = start_group(&args, group_id)?;
    send_accepted(settings, &args.actor, &command).await?;
    println!("{group_id}");
    if !(args.wait || args.follow || args.junit_out.is_some()) {
        return Ok(());
    }
    let pool = pool(settings).await?;
    let detail = until_ended(&pool, group_id, args.follow).await?;
    if let Some(path) = &args.junit_out {
        let report = group_reads::junit_report(&pool, group_id)
            .await?
            .with_context(|| format!("no group {group_id}"))?;
        std::fs::write(path, report).with_context(|| format!("writing {}", path.display()))?;
    }
    let status = detail.group.status;
    eprintln!(
        "group {group_id} {}{}",
        status.as_str(),
        detail
            .group
            .duration_ms
            .map(|ms| format!(" in {:.1} s", ms as f64 / 1000.0))
            .unwrap_or_default()
    );
    if status != GroupStatus::Passed {
        anyhow::bail!("group {group_id} did not pass ({})", status.as_str());
    }
    Ok(())
}

/// How often `--wait` reads the group's progress.
const POLL: Duration = Duration::from_millis(500);

/// Reads the group until the read models show it ended; with `follow`, draws a bar per member
/// (redrawn in place on a terminal, a line per change otherwise).
async fn until_ended(
    pool: &runledger_readmodel::PgPool,
    group_id: Uuid,
    follow: bool,
) -> anyhow::Result<GroupDetail> {
    let tty = std::io::stderr().is_terminal();
    let mut drawn_lines = 0;
    let mut last_lines: Vec<String> = Vec::new();
    let began = Instant::now();
    loop {
        if let Some(detail) = group_reads::detail(pool, group_id).await? {
            if follow {
                let lines = progress_lines(&detail, chrono::Utc::now());
                let mut stderr = std::io::stderr();
                if tty {
                    if drawn_lines > 0 {
                        write!(stderr, "\x1b[{drawn_lines}A")?;
                    }
                    for line in &lines {
                        writeln!(stderr, "\x1b[2K{line}")?;
                    }
                    drawn_lines = lines.len();
                } else {
                    for (index, line) in lines.iter().enumerate() {
                        let before = last_lines.get(index).map(|l| status_of(l));
                        if before != Some(status_of(line)) {
                            writeln!(stderr, "{line}")?;
                        }
                    }
                }
                last_lines = lines;
            }
            if detail.group.status != GroupStatus::Running {
                return Ok(detail);
            }
        } else if began.elapsed() > Duration::from_secs(30) {
            anyhow::bail!(
                "group {group_id} is not in the read models after 30 s: is the projector running?"
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The part of a progress line that says where the member is (its bar moves; this does not).
fn status_of(line: &str) -> &str {
    line.split(']').nth(1).unwrap_or(line).trim()
}

/// One line per member: `shard 3 [#####-----] running 12.0/20.5 s  9 tests  venv-2`.
fn progress_lines(detail: &GroupDetail, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    let plan = detail.group.plan.as_array().cloned().unwrap_or_default();
    plan.iter()
        .map(|planned| {
            let shard = planned["shard"].as_u64().unwrap_or(0);
            let run = planned["run_id"]
                .as_str()
                .and_then(|id| id.parse::<Uuid>().ok())
                .and_then(|id| detail.members.iter().find(|m| m.run_id == id));
            let predicted = planned["predicted_ms"].as_u64();
            let tests = planned["tests"].as_array().map_or(0, Vec::len);
            member_line(shard, run, predicted, tests, &planned["combination"], now)
        })
        .collect()
}

fn member_line(
    shard: u64,
    run: Option<&RunRow>,
    predicted_ms: Option<u64>,
    tests: usize,
    combination: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    const WIDTH: usize = 20;
    let status = run.map_or("queued", |run| run.status.as_str());
    let elapsed_ms = run
        .and_then(|run| run.started_at)
        .map(|started| {
            let end = run.and_then(|run| run.finished_at).unwrap_or(now);
            (end - started).num_milliseconds().max(0) as u64
        })
        .unwrap_or(0);
    let ended = run.is_some_and(|run| run.finished_at.is_some());
    let filled = match (ended, predicted_ms) {
        (true, _) => WIDTH,
        (false, Some(predicted)) if predicted > 0 => {
            ((elapsed_ms as f64 / predicted as f64) * WIDTH as f64).min(WIDTH as f64 - 1.0) as usize
        }
        _ => 0,
    };
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
    let timing = match predicted_ms {
        Some(predicted) => format!(
            "{:.1}/{:.1} s",
            elapsed_ms as f64 / 1000.0,
            predicted as f64 / 1000.0
        ),
        None => format!("{:.1} s", elapsed_ms as f64 / 1000.0),
    };
    let what = match (tests, combination.is_null()) {
        (0, false) => combination.to_string(),
        (count, _) => format!("{count} tests"),
    };
    let venv = run
        .and_then(|run| run.venv_name.clone())
        .unwrap_or_default();
    format!("shard {shard:>2} [{bar}] {status:<9} {timing:<14} {what}  {venv}")
}

async fn cancel(settings: &Settings, args: CancelArgs) -> anyhow::Result<()> {
    let command = CancelGroup {
        group_id: GroupId::from(args.group_id),
        reason: args.reason,
    };
    send_accepted(settings, &args.actor, &command).await?;
    println!("cancellation of group {} requested", args.group_id);
    Ok(())
}

async fn list(settings: &Settings, args: ListArgs) -> anyhow::Result<()> {
    let pool = pool(settings).await?;
    let statuses = match args.status.as_deref() {
        Some(raw) => vec![
            runledger_readmodel::rows::group_status(raw).with_context(|| {
                format!("--status {raw:?}: use running, passed, failed, error or cancelled")
            })?,
        ],
        None => Vec::new(),
    };
    let filters = GroupFilters {
        statuses,
        ..GroupFilters::default()
    };
    let page = group_reads::page(&pool, &filters, args.limit.clamp(1, 10_000), None).await?;
    println!(
        "{:<36}  {:<9}  {:<6}  {:>7}  {:<12}  {:<20}  WALL",
        "GROUP", "STATUS", "KIND", "MEMBERS", "USER", "STARTED"
    );
    for group in page.rows {
        println!(
            "{:<36}  {:<9}  {:<6}  {:>7}  {:<12}  {:<20}  {}",
            group.group_id,
            group.status.as_str(),
            group.kind,
            group.members,
            group.requested_by,
            group.started_at.format("%Y-%m-%d %H:%M:%S"),
            group
                .duration_ms
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn show(settings: &Settings, args: ShowArgs) -> anyhow::Result<()> {
    let pool = pool(settings).await?;
    let detail = group_reads::detail(&pool, args.group_id)
        .await?
        .with_context(|| format!("no group {}", args.group_id))?;
    let document = json!({
        "group": detail.group,
        "test_case_name": detail.test_case_name,
        "members": detail.members,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

async fn junit(settings: &Settings, args: JunitArgs) -> anyhow::Result<()> {
    let pool = pool(settings).await?;
    let report = group_reads::junit_report(&pool, args.group_id)
        .await?
        .with_context(|| format!("no group {}", args.group_id))?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, report).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{report}"),
    }
    Ok(())
}

async fn pool(settings: &Settings) -> anyhow::Result<runledger_readmodel::PgPool> {
    settings
        .database
        .connect(crate::database::DbUser::Owner, 2)
        .await
}
