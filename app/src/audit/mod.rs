//! `runledger audit`: read the event log directly to find out who asked for what, when, and what
//! happened.
//!
//! - `runledger audit [filters]` lists matching events, one JSON object a line (or a table),
//!   and with `--follow` keeps listing new ones ([`list`]).
//! - `runledger audit state --at <position | time> (run | venv | pool) <id>` folds the log up to
//!   that point with the domain's own `evolve` and prints what the lab looked like ([`state`]).
//! - `runledger audit verify` checks the log's hash chain ([`verify`]).
//!
//! These modules parse arguments and print; what they print comes from `runledger_audit` (the
//! fold, the views, the paging). Data goes to stdout; logs go to stderr (quiet by default, like
//! `send`).

mod format;
mod list;
mod output;
mod state;
mod verify;

use crate::settings::Settings;
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use runledger_store::EventStore;
use tokio_util::sync::CancellationToken;

/// `runledger audit`: with no subcommand, lists events (see [`list::ListArgs`]).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    list: list::ListArgs,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Print the state of a run, a venv or a machine's pool as it was at a past position or time.
    ///
    /// Example: `runledger audit state --at 2026-11-24T10:00:00Z run 0193a000-…`
    State(state::StateArgs),
    /// Check the log's tamper-evident hash chain; exit 1 naming the first bad position.
    ///
    /// Example: `runledger audit verify --format json`
    Verify(verify::VerifyArgs),
}

/// Runs `runledger audit …`.
pub async fn audit(settings: &Settings, args: &AuditArgs) -> anyhow::Result<()> {
    let store = open(settings).await?;
    match &args.command {
        None => list::list(&store, &args.list).await,
        Some(AuditCommand::State(state)) => state::state(&store, state).await,
        Some(AuditCommand::Verify(verify)) => verify::verify(&store, verify).await,
    }
}

/// Connects with a small pool (one query runs at a time); the owner migrates, any other role
/// checks the migrations.
async fn open(settings: &Settings) -> anyhow::Result<EventStore> {
    let pool = settings
        .database
        .service_pool(crate::database::DbUser::Owner, 4)
        .await?;
    Ok(EventStore::new(pool))
}

/// A token cancelled at the first SIGINT (Ctrl-C) or SIGTERM.
///
/// Only `--follow` installs the handlers (at once, before returning, so no signal is missed):
/// until then the signals keep their default effect, and Ctrl-C stops a long listing at once.
fn stop_on_signal() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::debug!("signal received; stopping");
        cancel.cancel();
    });
    Ok(token)
}

/// Parses an RFC 3339 time for `--since`, `--until` and `--at`.
fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|err| {
            format!("expected an RFC 3339 time such as 2026-11-24T10:00:00Z, got {raw:?} ({err})")
        })
}
