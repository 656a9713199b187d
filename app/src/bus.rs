//! `runledger bus status|check|reset`: which log a prefix's NATS streams belong to, whether
//! this database's log may use them, and deleting them when they hold another log's events.

use crate::database::DbUser;
use crate::settings::Settings;
use anyhow::Context;
use clap::Subcommand;
use runledger_bus::claim::{self, Decision, StreamKind, StreamState, decide, observe};
use runledger_bus::{BusNames, LogFacts};
use runledger_store::EventStore;
use std::io::{BufRead, IsTerminal, Write};

/// Exit status of `runledger bus check` when the streams hold another log's events.
pub const FOREIGN_EXIT: i32 = 3;

/// What `runledger bus` can do.
#[derive(Debug, Subcommand)]
pub enum BusCommand {
    /// The prefix's streams: the log each belongs to, and how many messages it holds.
    ///
    /// Example: `RUNLEDGER_NATS_PREFIX=lab2 runledger bus status`
    Status,
    /// Whether this database's log may use the prefix's streams: prints `log <id>` (this
    /// database's log), then exits 0 when the streams are its own or free, 3 (with the reason
    /// on stderr) when they hold another log's events. Changes nothing.
    ///
    /// Example: `runledger bus check || RUNLEDGER_NATS_PREFIX=lab2 runledger serve`
    Check,
    /// Delete the prefix's streams (commands and events, with their consumers), after asking
    /// you to type the prefix: the way out when they hold another log's events. The database
    /// that wrote those events keeps its log; a handler of that log refills the events stream.
    ///
    /// Example: `runledger bus reset` (or `runledger bus reset --yes` in scripts)
    Reset {
        /// Do not ask: delete at once.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a `bus` subcommand.
pub async fn run(settings: &Settings, command: BusCommand) -> anyhow::Result<()> {
    let names = settings.names()?;
    let js = runledger_bus::jetstream(settings.nats("runledger-cli").await?);
    match command {
        BusCommand::Status => status(&js, &names).await,
        BusCommand::Check => check(settings, &js, &names).await,
        BusCommand::Reset { yes } => reset(&js, &names, yes).await,
    }
}

async fn status(js: &async_nats::jetstream::Context, names: &BusNames) -> anyhow::Result<()> {
    let streams = runledger_bus::reset::prefix_streams(js, names).await?;
    println!("prefix {}", names.prefix());
    for (name, state) in streams {
        println!("{}", describe(&name, state.as_ref()));
    }
    Ok(())
}

fn describe(name: &str, state: Option<&StreamState>) -> String {
    let Some(state) = state else {
        return format!("  {name}: missing");
    };
    let owner = state.claim.map_or_else(
        || "no log identity".to_owned(),
        |claim| format!("log {}", claim.log),
    );
    format!(
        "  {name}: {owner}, {} messages, last sequence {}",
        state.messages, state.last_sequence
    )
}

async fn check(
    settings: &Settings,
    js: &async_nats::jetstream::Context,
    names: &BusNames,
) -> anyhow::Result<()> {
    let pool = settings.database.connect(DbUser::Owner, 2).await?;
    let store = EventStore::new(pool.clone());
    let id = store
        .log_id()
        .await
        .context("reading this database's log identity (run `runledger migrate` first)")?;
    println!("log {id}");
    let mut refusals = Vec::new();
    for kind in [StreamKind::Commands, StreamKind::Events] {
        let name = kind.stream_name(names);
        let state = observe(js, &name).await?;
        // The head after the stream: a relay publishing meanwhile only moves the head ahead.
        let log = LogFacts {
            id,
            head: store.head().await?,
        };
        let compared = match state.as_ref().and_then(|s| s.sequence_to_compare(&log)) {
            Some(sequence) => {
                let position = i64::try_from(sequence).unwrap_or(i64::MAX);
                let in_stream = claim::event_id_at(js, &name, sequence).await?;
                Some(in_stream.is_some() && in_stream == store.event_id_at(position).await?)
            }
            None => None,
        };
        if let Decision::Refuse(refusal) = decide(kind, &name, state.as_ref(), &log, compared) {
            refusals.push(refusal);
        }
    }
    pool.close().await;
    if refusals.is_empty() {
        println!(
            "the streams of prefix {} are free for log {}",
            names.prefix(),
            id
        );
        return Ok(());
    }
    for refusal in refusals {
        eprintln!("{refusal}");
    }
    std::process::exit(FOREIGN_EXIT);
}

async fn reset(
    js: &async_nats::jetstream::Context,
    names: &BusNames,
    yes: bool,
) -> anyhow::Result<()> {
    let streams = runledger_bus::reset::prefix_streams(js, names).await?;
    if streams.iter().all(|(_, state)| state.is_none()) {
        println!(
            "prefix {} has no streams: nothing to delete",
            names.prefix()
        );
        return Ok(());
    }
    if !yes {
        confirm(names, &streams)?;
    }
    for name in runledger_bus::reset::delete_streams(js, names).await? {
        println!("deleted {name}");
    }
    Ok(())
}

/// Shows what would be deleted and asks for the prefix to be typed.
fn confirm(names: &BusNames, streams: &[(String, Option<StreamState>)]) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    anyhow::ensure!(
        stdin.is_terminal(),
        "runledger bus reset asks before it deletes anything: run it in a terminal, or pass --yes"
    );
    let mut err = std::io::stderr();
    writeln!(
        err,
        "This deletes these NATS streams and every message in them:"
    )?;
    for (name, state) in streams {
        writeln!(err, "{}", describe(name, state.as_ref()))?;
    }
    write!(err, "Type the prefix ({}) to delete them: ", names.prefix())?;
    err.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    anyhow::ensure!(
        answer.trim() == names.prefix(),
        "not confirmed: nothing deleted"
    );
    Ok(())
}
