//! `runledger projections status` and `runledger projections rebuild [NAME...]`.

use crate::settings::Settings;
use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use runledger_projections::RebuildProgress;
use runledger_readmodel::ReadModel;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// What `runledger projections` can do.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each read model's position and lag behind the log's head.
    ///
    /// Example: `runledger projections status`
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild read models from position 0 into new tables, then swap them in atomically;
    /// queries keep answering from the old tables meanwhile.
    ///
    /// Example: `runledger projections rebuild runs venvs` (no name: all of them)
    Rebuild {
        /// Read models to rebuild: runs, venvs, machines, test_cases, users.
        names: Vec<String>,
    },
}

/// Runs a `projections` subcommand.
pub async fn run(settings: &Settings, command: ProjectionsCommand) -> anyhow::Result<()> {
    // A rebuild creates tables: as the projector's role, so that they stay its own and the
    // gateway's grants (default privileges) apply to them.
    let pool = settings
        .database
        .service_pool(crate::database::DbUser::Projector, 16)
        .await?;
    match command {
        ProjectionsCommand::Status { json } => status(&pool, json).await,
        ProjectionsCommand::Rebuild { names } => rebuild(&pool, &names).await,
    }
}

async fn status(pool: &runledger_store::PgPool, json: bool) -> anyhow::Result<()> {
    let head = runledger_readmodel::log_head(pool).await?;
    let rows = runledger_readmodel::status(pool).await?;
    if json {
        let answer = serde_json::json!({ "head": head, "projections": rows });
        println!("{answer}");
        return Ok(());
    }
    println!("log head: {head}");
    println!(
        "{:<12} {:>12} {:>10} {:>8}  updated",
        "read model", "position", "lag", "layout"
    );
    for row in rows {
        let layout = row.version.map_or("-".to_owned(), |v| v.to_string());
        let updated = row.updated_at.map_or("never".to_owned(), |at| {
            at.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
        });
        println!(
            "{:<12} {:>12} {:>10} {:>8}  {updated}",
            row.name, row.position, row.lag, layout
        );
    }
    Ok(())
}

async fn rebuild(pool: &runledger_store::PgPool, names: &[String]) -> anyhow::Result<()> {
    let models: Vec<ReadModel> = if names.is_empty() {
        runledger_readmodel::ALL.to_vec()
    } else {
        names
            .iter()
            .map(|name| ReadModel::parse(name))
            .collect::<Result<_, _>>()?
    };
    let mut reporter = Reporter::new();
    let report = runledger_projections::rebuild(pool, &models, |progress| reporter.show(progress))
        .await
        .context("rebuilding read models")?;
    reporter.finish();
    let seconds = report.elapsed.as_secs_f64();
    let names: Vec<&str> = report.models.iter().map(|model| model.name()).collect();
    println!(
        "rebuilt {} from {} events in {seconds:.1} s ({:.0} events/s); now at position {}",
        names.join(", "),
        report.events,
        report.events as f64 / seconds.max(1e-9),
        report.position
    );
    Ok(())
}

/// A progress bar with events/s and ETA on a terminal; a plain line every few seconds otherwise.
enum Reporter {
    Bar(ProgressBar),
    Lines { last: Option<Instant> },
}

impl Reporter {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::Lines { last: None };
        }
        let bar = ProgressBar::new(0);
        let template =
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, ETA {eta})";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Self::Bar(bar)
    }

    fn show(&mut self, progress: RebuildProgress) {
        let applied = u64::try_from(progress.applied).unwrap_or(0);
        let total = u64::try_from(progress.total.max(progress.applied)).unwrap_or(0);
        match self {
            Self::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(applied);
            }
            Self::Lines { last } => {
                let due = last.is_none_or(|at| at.elapsed() >= Duration::from_secs(2));
                if due || applied == total {
                    *last = Some(Instant::now());
                    let rate = progress.applied as f64 / progress.elapsed.as_secs_f64().max(1e-9);
                    let left = (progress.total - progress.applied).max(0) as f64 / rate.max(1.0);
                    eprintln!(
                        "rebuild: {applied}/{total} events, {rate:.0} events/s, ETA {left:.0} s"
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
