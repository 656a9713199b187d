//! `runledger audit [filters] [--follow]`: the matching events in log order, a page at a time
//! (the paging is `runledger_audit::Listing`'s; this prints it).

use super::format::{Format, Renderer};
use super::{output, parse_time};
use chrono::{DateTime, Utc};
use clap::Args;
use runledger_audit::{Listing, Next};
use runledger_store::{AuditFilter, EventStore};
use std::io::Write;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often `--follow` asks for new events once it has caught up.
const POLL: Duration = Duration::from_millis(250);

/// Filters and output of the event listing. Every given filter must hold; a repeated flag
/// matches any of its values.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// A stream id (`run-0193…`) or a stream type (`run`, `machine`, `venv`, `user`, `test_case`,
    /// `command`, `executor`: every stream of that type). Repeat for several.
    #[arg(long = "stream", value_name = "STREAM")]
    streams: Vec<String>,
    /// An event type, e.g. `run_assigned`. Repeat for several.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// An actor as recorded, e.g. `admin` or `executor:e1`. Repeat for several.
    #[arg(long = "actor", value_name = "ACTOR")]
    actors: Vec<String>,
    /// A correlation id: the events of one chain (a run's, from `start_run` to its end, carry
    /// the correlation id of the `start_run`, or its command id). Repeat for several.
    #[arg(long = "correlation", value_name = "UUID")]
    correlations: Vec<uuid::Uuid>,
    /// Only events recorded at or after this RFC 3339 time (inclusive).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only events recorded before this RFC 3339 time (exclusive).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Only events at this log position or later (inclusive).
    #[arg(long, value_name = "POSITION", value_parser = clap::value_parser!(i64).range(1..))]
    from: Option<i64>,
    /// Only events at this log position or earlier (inclusive).
    #[arg(long, value_name = "POSITION", value_parser = clap::value_parser!(i64).range(0..))]
    to: Option<i64>,
    /// Once caught up, keep printing new matching events until Ctrl-C or SIGTERM.
    #[arg(long)]
    follow: bool,
    /// `json`: one event a line with the contract's fields; `table`: aligned columns.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Stop after this many events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    limit: Option<i64>,
}

impl ListArgs {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            streams: self.streams.clone(),
            types: self.types.clone(),
            actors: self.actors.clone(),
            correlations: self.correlations.clone(),
            since: self.since,
            until: self.until,
            from: self.from,
            to: self.to,
        }
    }
}

/// Prints the matching events; with `--follow`, keeps going until a signal arrives.
pub async fn list(store: &EventStore, args: &ListArgs) -> anyhow::Result<()> {
    let stop = if args.follow {
        Some(super::stop_on_signal()?)
    } else {
        None
    };
    let mut listing = Listing::new(store, args.filter(), args.limit);
    let renderer = Renderer::new(args.format);
    let mut out = output::stdout();
    let printed = print(&mut listing, &renderer, &mut out, stop.as_ref()).await;
    output::closed_pipe_is_success(printed)
}

/// Prints page after page; once caught up, waits for more only when following.
async fn print(
    listing: &mut Listing<'_>,
    renderer: &Renderer,
    out: &mut impl Write,
    follow: Option<&CancellationToken>,
) -> anyhow::Result<()> {
    renderer.header(out)?;
    loop {
        let page = listing.next_page().await?;
        for record in &page.events {
            renderer.record(out, record)?;
        }
        out.flush()?;
        match page.next {
            Next::More => {}
            Next::Done => return Ok(()),
            Next::CaughtUp => {
                let Some(stop) = follow else {
                    return Ok(());
                };
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }
}
