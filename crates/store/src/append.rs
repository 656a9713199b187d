//! Appending a group of commands and their events in one transaction.

use crate::EventStore;
use crate::error::{StoreError, classify};
use chrono::{DateTime, Utc};
use runledger_types::event::CURRENT_SCHEMA_VERSION;
use runledger_types::{CommandId, EventRef, NewEvent, Outcome, RawEventRecord, Rejection};
use std::ops::Range;
use uuid::Uuid;

/// One handled command: its events (a range of the batch's events) or its rejection.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    /// The idempotency key.
    pub command_id: CommandId,
    /// The type as sent.
    pub command_type: String,
    /// Who asked.
    pub actor: String,
    /// Its events in [`AppendBatch::events`]; for a rejection, the `command_rejected` event.
    pub events: Range<usize>,
    /// Present when the command was refused.
    pub rejection: Option<Rejection>,
}

/// Everything one transaction appends.
#[derive(Debug, Clone, Default)]
pub struct AppendBatch {
    /// The log head the decisions were made on; `None` skips the check.
    pub expected_head: Option<i64>,
    /// The events, in order; they get consecutive positions.
    pub events: Vec<NewEvent>,
    /// The commands the events answer.
    pub commands: Vec<CommandRecord>,
}

/// What an append wrote: each command's outcome, and the events as stored (for the relay).
#[derive(Debug)]
pub struct Appended {
    /// One per [`AppendBatch::commands`], in order.
    pub outcomes: Vec<Outcome>,
    /// The batch's events with their positions, exactly as the log holds them.
    pub events: Vec<RawEventRecord>,
}

/// The stored form of each event: positions from `base + 1`, data serialised once.
fn records(events: &[NewEvent], base: i64) -> Result<Vec<RawEventRecord>, StoreError> {
    (1_i64..)
        .zip(events)
        .map(|(offset, event)| {
            let data = event.event.data_json().map_err(|source| StoreError::Json {
                what: "event does not serialise".to_owned(),
                source,
            })?;
            Ok(RawEventRecord {
                event_id: event.event_id,
                position: base + offset,
                stream_id: event.stream_id.clone(),
                stream_version: event.stream_version,
                event_type: event.event.event_type().to_owned(),
                schema_version: CURRENT_SCHEMA_VERSION,
                recorded_at: event.recorded_at,
                actor: event.actor.as_str().to_owned(),
                command_id: event.command_id,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                data,
            })
        })
        .collect()
}

fn outcome_of(record: &CommandRecord, events: &[NewEvent], base: i64) -> Outcome {
    if let Some(rejection) = &record.rejection {
        return Outcome::rejected(record.command_id, rejection.clone());
    }
    let refs = record
        .events
        .clone()
        .filter_map(|index| events.get(index).map(|event| (index, event)))
        .map(|(index, event)| EventRef {
            stream_id: event.stream_id.clone(),
            version: event.stream_version,
            position: base + 1 + index as i64,
            event_type: event.event.event_type().to_owned(),
        })
        .collect();
    Outcome::accepted(record.command_id, refs)
}

/// The append of a batch decided at a known log head, as one statement (one round trip, its
/// own transaction unless run inside one): it takes the head's row lock only while the head is
/// still `expected`, and inserts the events and commands only then. Returns the head it found
/// and whether it wrote. Its placeholders are [`AppendParams`]' fields, in their order.
const APPEND_AT: &str = "WITH head AS (\
       UPDATE log_head SET position = position + $18 WHERE position = $19 RETURNING position), \
     new_events AS (\
       INSERT INTO events (position, event_id, stream_id, stream_version, type, schema_version, \
         recorded_at, actor, command_id, correlation_id, causation_id, data) \
       SELECT p, e, s, v, t, $12, r, a, c, co, ca, d::jsonb FROM UNNEST($1::bigint[], $2::uuid[], \
         $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::text[], $8::uuid[], \
         $9::uuid[], $10::uuid[], $11::text[]) AS x(p, e, s, v, t, r, a, c, co, ca, d) \
       WHERE EXISTS (SELECT 1 FROM head)), \
     new_commands AS (\
       INSERT INTO commands (command_id, type, actor, accepted, outcome, handled_at) \
       SELECT i, ty, ac, ok, o::jsonb, now() FROM UNNEST($13::uuid[], $14::text[], $15::text[], \
         $16::bool[], $17::text[]) AS y(i, ty, ac, ok, o) \
       WHERE EXISTS (SELECT 1 FROM head)) \
     SELECT l.position, EXISTS (SELECT 1 FROM head) FROM log_head l";

/// The parameters of [`APPEND_AT`], one field per placeholder and in placeholder order (`$1` …
/// `$19`), so that a statement and its binding cannot drift apart: [`AppendParams::bind`] is
/// the one place that binds them.
struct AppendParams<'a> {
    /// `$1`: each event's log position.
    positions: Vec<i64>,
    /// `$2`
    event_ids: Vec<Uuid>,
    /// `$3`
    stream_ids: Vec<&'a str>,
    /// `$4`
    stream_versions: Vec<i64>,
    /// `$5`
    event_types: Vec<&'a str>,
    /// `$6`
    recorded_at: Vec<DateTime<Utc>>,
    /// `$7`
    actors: Vec<&'a str>,
    /// `$8`: the command each event answers.
    event_command_ids: Vec<Uuid>,
    /// `$9`
    correlation_ids: Vec<Option<Uuid>>,
    /// `$10`
    causation_ids: Vec<Option<Uuid>>,
    /// `$11`: each event's data as JSON text.
    data: Vec<&'a str>,
    /// `$12`: the schema version every new event is written in.
    schema_version: i32,
    /// `$13`: the handled commands' ids.
    command_ids: Vec<Uuid>,
    /// `$14`
    command_types: Vec<&'a str>,
    /// `$15`
    command_actors: Vec<&'a str>,
    /// `$16`
    accepted: Vec<bool>,
    /// `$17`: each command's outcome as JSON text.
    outcomes: Vec<String>,
    /// `$18`: how far the head moves.
    event_count: i64,
    /// `$19`: the head the batch was decided at.
    expected_head: i64,
}

impl<'a> AppendParams<'a> {
    fn new(
        records: &'a [RawEventRecord],
        commands: &'a [CommandRecord],
        outcomes: &[Outcome],
        expected_head: i64,
    ) -> Result<Self, StoreError> {
        let accepted = outcomes.iter().map(|o| o.accepted).collect();
        let outcomes = outcomes
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| StoreError::Json {
                what: "outcome does not serialise".to_owned(),
                source,
            })?;
        Ok(Self {
            positions: records.iter().map(|r| r.position).collect(),
            event_ids: records.iter().map(|r| r.event_id.0).collect(),
            stream_ids: records.iter().map(|r| r.stream_id.as_str()).collect(),
            stream_versions: records.iter().map(|r| r.stream_version).collect(),
            event_types: records.iter().map(|r| r.event_type.as_str()).collect(),
            recorded_at: records.iter().map(|r| r.recorded_at).collect(),
            actors: records.iter().map(|r| r.actor.as_str()).collect(),
            event_command_ids: records.iter().map(|r| r.command_id.0).collect(),
            correlation_ids: records.iter().map(|r| r.correlation_id).collect(),
            causation_ids: records.iter().map(|r| r.causation_id).collect(),
            data: records.iter().map(|r| r.data.get()).collect(),
            schema_version: CURRENT_SCHEMA_VERSION,
            command_ids: commands.iter().map(|c| c.command_id.0).collect(),
            command_types: commands.iter().map(|c| c.command_type.as_str()).collect(),
            command_actors: commands.iter().map(|c| c.actor.as_str()).collect(),
            accepted,
            outcomes,
            event_count: records.len() as i64,
            expected_head,
        })
    }

    /// Binds every field to [`APPEND_AT`], in placeholder order.
    fn bind(
        self,
    ) -> sqlx::query::QueryAs<'a, sqlx::Postgres, (i64, bool), sqlx::postgres::PgArguments> {
        sqlx::query_as(APPEND_AT)
            .bind(self.positions)
            .bind(self.event_ids)
            .bind(self.stream_ids)
            .bind(self.stream_versions)
            .bind(self.event_types)
            .bind(self.recorded_at)
            .bind(self.actors)
            .bind(self.event_command_ids)
            .bind(self.correlation_ids)
            .bind(self.causation_ids)
            .bind(self.data)
            .bind(self.schema_version)
            .bind(self.command_ids)
            .bind(self.command_types)
            .bind(self.command_actors)
            .bind(self.accepted)
            .bind(self.outcomes)
            .bind(self.event_count)
            .bind(self.expected_head)
    }
}

impl EventStore {
    /// Appends a batch atomically and returns each command's outcome (with positions).
    ///
    /// Fails with [`StoreError::Conflict`] when the head moved past `expected_head` or a stream
    /// version is taken, and with [`StoreError::AlreadyHandled`] when a command id was recorded
    /// already; nothing is written then.
    ///
    /// With `expected_head` the append is one statement, one round trip; an append that must
    /// follow another one still under way has to wait for it to end first, or it finds the head
    /// not yet moved and conflicts. Without, the head is locked first and the same statement
    /// appends at it, in one transaction.
    pub async fn append(&self, batch: &AppendBatch) -> Result<Appended, StoreError> {
        match batch.expected_head {
            Some(expected) => append_at(&self.pool, batch, expected).await,
            None => {
                let mut tx = self.pool.begin().await?;
                let head: i64 = sqlx::query_scalar("SELECT position FROM log_head FOR UPDATE")
                    .fetch_one(&mut *tx)
                    .await?;
                let appended = append_at(&mut *tx, batch, head).await?;
                tx.commit().await?;
                Ok(appended)
            }
        }
    }
}

/// Appends `batch` at position `expected` with [`APPEND_AT`].
async fn append_at<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    batch: &AppendBatch,
    expected: i64,
) -> Result<Appended, StoreError> {
    let records = records(&batch.events, expected)?;
    let outcomes: Vec<Outcome> = batch
        .commands
        .iter()
        .map(|record| outcome_of(record, &batch.events, expected))
        .collect();
    let (head, written): (i64, bool) =
        AppendParams::new(&records, &batch.commands, &outcomes, expected)?
            .bind()
            .fetch_one(executor)
            .await
            .map_err(classify)?;
    if !written {
        return Err(StoreError::Conflict(format!(
            "log head is {head}, decisions were made at {expected}"
        )));
    }
    Ok(Appended {
        outcomes,
        events: records,
    })
}
