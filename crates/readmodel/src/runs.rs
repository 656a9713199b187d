//! One run: its row, its per-test results and why it waits, its audit trail page by page, and
//! its output as a follower reads it. The row comes from `rm_runs`; the tests, the audit trail
//! and the output stay in the log (copying them into read models would double what projecting
//! costs), read here through runledger-store.

use crate::error::ReadModelError;
use crate::rows::RunRow;
use runledger_store::EventStore;
use runledger_types::{RunStatus, StreamId};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The run `run_id`, if the read model has it.
pub async fn run(pool: &PgPool, run_id: Uuid) -> Result<Option<RunRow>, ReadModelError> {
    Ok(
        sqlx::query_as("SELECT * FROM rm_runs.runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The run `run_id` as Postgres renders its row to JSON (every column), if the read model has
/// it: `runledger run show` prints it.
pub async fn run_document(pool: &PgPool, run_id: Uuid) -> Result<Option<Value>, ReadModelError> {
    Ok(
        sqlx::query_scalar("SELECT to_jsonb(r) FROM rm_runs.runs r WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The per-test results of the run's last finished attempt, from the log; `None` until it has
/// finished.
pub async fn run_tests(pool: &PgPool, run_id: Uuid) -> Result<Option<Vec<Value>>, ReadModelError> {
    Ok(EventStore::new(pool.clone())
        .run_tests(run_id.into())
        .await?)
}

/// A run with what its detail page shows beyond the row.
#[derive(Debug, Clone)]
pub struct RunDetail {
    /// The row.
    pub run: RunRow,
    /// The per-test results of its last finished attempt; `None` until it has finished.
    pub tests: Option<Vec<Value>>,
    /// Why it waits, while queued.
    pub queue_reason: Option<String>,
}

/// The run `run_id` with its tests and queue reason, if the read model has it.
pub async fn run_detail(pool: &PgPool, run_id: Uuid) -> Result<Option<RunDetail>, ReadModelError> {
    let Some(run) = run(pool, run_id).await? else {
        return Ok(None);
    };
    let tests = run_tests(pool, run_id).await?;
    let queue_reason = if run.status == RunStatus::Queued {
        sqlx::query_scalar("SELECT reason FROM rm_venvs.queue WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(pool)
            .await?
            .flatten()
    } else {
        None
    };
    Ok(Some(RunDetail {
        run,
        tests,
        queue_reason,
    }))
}

/// Which part of a run's audit trail to read.
#[derive(Debug, Clone, Copy)]
pub struct EventsQuery {
    /// The run.
    pub run_id: Uuid,
    /// Include `run_output` events.
    pub output: bool,
    /// Only events after this stream version (0 from the start).
    pub after_version: i64,
    /// Most events.
    pub limit: i64,
}

/// One event of a run's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    /// Its version in the run's stream: the next page's cursor.
    pub stream_version: i64,
    /// `{position, type, actor, recorded_at, command_id, correlation_id, stream_version, data}`
    /// as Postgres renders it (the API's wire form, times included).
    pub document: Value,
}

/// A page of a run's events in stream order.
pub async fn run_events(
    pool: &PgPool,
    query: &EventsQuery,
) -> Result<Vec<RunEvent>, ReadModelError> {
    let rows: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT stream_version, jsonb_build_object('position', position, 'type', type, \
                'actor', actor, 'recorded_at', recorded_at, 'command_id', command_id, \
                'correlation_id', correlation_id, 'stream_version', stream_version, 'data', data) \
         FROM events WHERE stream_id = $1 AND ($2 OR type <> 'run_output') \
           AND stream_version > $3 \
         ORDER BY stream_version LIMIT $4",
    )
    .bind(StreamId::run(query.run_id.into()).as_str())
    .bind(query.output)
    .bind(query.after_version)
    .bind(query.limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(stream_version, document)| RunEvent {
            stream_version,
            document,
        })
        .collect())
}

/// An event of a run's output as a follower reads it from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    /// `run_output` or `run_finished`.
    pub event_type: String,
    /// Its log position.
    pub position: i64,
    /// Its payload.
    pub data: Value,
}

/// Up to `limit` of a run's `run_output` events numbered after `after_seq`, and its
/// `run_finished` if the page reaches it, in order. Fewer than `limit` means no more for now.
pub async fn run_output_after(
    pool: &PgPool,
    run_id: Uuid,
    after_seq: u64,
    limit: i64,
) -> Result<Vec<LoggedEvent>, ReadModelError> {
    let records = EventStore::new(pool.clone())
        .run_output_after(run_id.into(), after_seq, limit)
        .await?;
    Ok(records
        .into_iter()
        .map(|record| LoggedEvent {
            event_type: record.event_type,
            position: record.position,
            data: record.data,
        })
        .collect())
}

/// True once the log holds the run's request, whether or not a projector has folded it: a
/// follower may subscribe to a run the moment its `start_run` is accepted.
pub async fn run_in_log(pool: &PgPool, run_id: Uuid) -> Result<bool, ReadModelError> {
    let stream_id = StreamId::run(run_id.into());
    let requested = EventStore::new(pool.clone())
        .last_of_type(&stream_id, "run_requested")
        .await?;
    Ok(requested.is_some())
}
