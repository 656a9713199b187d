//! `runledger audit [filters] [--follow]`: the matching events in log order, a page at a time.

use super::format::{Format, Renderer};
use super::{PAGE, output, parse_time};
use chrono::{DateTime, Utc};
use clap::Args;
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
    let mut listing = Listing {
        store,
        filter: args.filter(),
        renderer: Renderer::new(args.format),
        after: args.from.map_or(0, |from| from - 1),
        remaining: args.limit,
    };
    let mut out = output::stdout();
    output::closed_pipe_is_success(listing.run(&mut out, stop.as_ref()).await)
}

/// One listing in progress.
struct Listing<'a> {
    store: &'a EventStore,
    filter: AuditFilter,
    renderer: Renderer,
    /// Every event up to here was printed or did not match.
    after: i64,
    /// How many more events `--limit` allows.
    remaining: Option<i64>,
}

impl Listing<'_> {
    async fn run(
        &mut self,
        out: &mut impl Write,
        follow: Option<&CancellationToken>,
    ) -> anyhow::Result<()> {
        self.renderer.header(out)?;
        loop {
            if self.page(out).await? == Progress::Done {
                return Ok(());
            }
            let Some(stop) = follow else {
                return Ok(());
            };
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Prints pages until the listing has caught up with the log head (or is complete).
    async fn page(&mut self, out: &mut impl Write) -> anyhow::Result<Progress> {
        loop {
            // Positions are a gap-free prefix `1..=head`: every event up to `bound` is visible
            // now, so once a page comes back short, nothing up to `bound` is left to print.
            let asked_at = Utc::now();
            let head = self.store.head().await?;
            let bound = self.filter.to.map_or(head, |to| to.min(head));
            let want = self.remaining.map_or(PAGE, |remaining| remaining.min(PAGE));
            let bounded = AuditFilter {
                to: Some(bound),
                ..self.filter.clone()
            };
            let events = self.store.audit_page(&bounded, self.after, want).await?;
            for record in &events {
                self.renderer.record(out, record)?;
            }
            out.flush()?;
            let count = i64::try_from(events.len())?;
            self.remaining = self.remaining.map(|remaining| remaining - count);
            if self.remaining == Some(0) {
                return Ok(Progress::Done);
            }
            if count < want {
                self.after = self.after.max(bound);
                let complete =
                    self.filter.to.is_some_and(|to| bound >= to) || self.until_passed(asked_at);
                return Ok(if complete {
                    Progress::Done
                } else {
                    Progress::CaughtUp
                });
            }
            self.after = events.last().map_or(self.after, |record| record.position);
        }
    }
}

impl Listing<'_> {
    /// True when no event committed from now on can fall before `--until`: events are stamped
    /// when decided, and committed well within [`COMMIT_MARGIN`] of it.
    fn until_passed(&self, asked_at: DateTime<Utc>) -> bool {
        self.filter
            .until
            .is_some_and(|until| until + COMMIT_MARGIN < asked_at)
    }
}

/// How long after its `recorded_at` an event is surely committed (and so visible).
const COMMIT_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Where a listing stands after printing what there was.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Everything up to the head is printed; later events may still match.
    CaughtUp,
    /// Nothing more can match (`--to` reached) or `--limit` is used up.
    Done,
}
