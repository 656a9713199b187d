//! Appending a group of commands and their events in one transaction.

use crate::EventStore;
use crate::error::{StoreError, classify};
use chrono::{DateTime, Utc};
use runledger_types::event::CURRENT_SCHEMA_VERSION;
use runledger_types::{CommandId, EventRef, NewEvent, Outcome, Rejection};
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

/// Column arrays for `INSERT … SELECT FROM UNNEST(…)`.
#[derive(Default)]
struct EventColumns {
    positions: Vec<i64>,
    event_ids: Vec<Uuid>,
    stream_ids: Vec<String>,
    versions: Vec<i64>,
    types: Vec<&'static str>,
    recorded_at: Vec<DateTime<Utc>>,
    actors: Vec<String>,
    command_ids: Vec<Uuid>,
    correlation_ids: Vec<Option<Uuid>>,
    causation_ids: Vec<Option<Uuid>>,
    data: Vec<String>,
}

impl EventColumns {
    fn build(events: &[NewEvent], base: i64) -> Result<Self, StoreError> {
        let mut cols = Self::default();
        for (offset, event) in (1_i64..).zip(events) {
            let data = event
                .event
                .data_json()
                .map_err(|err| StoreError::Corrupt(format!("event does not serialise: {err}")))?;
            cols.positions.push(base + offset);
            cols.event_ids.push(event.event_id.0);
            cols.stream_ids.push(event.stream_id.as_str().to_owned());
            cols.versions.push(event.stream_version);
            cols.types.push(event.event.event_type());
            cols.recorded_at.push(event.recorded_at);
            cols.actors.push(event.actor.as_str().to_owned());
            cols.command_ids.push(event.command_id.0);
            cols.correlation_ids.push(event.correlation_id);
            cols.causation_ids.push(event.causation_id);
            cols.data.push(data);
        }
        Ok(cols)
    }
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
            stream_id: event.stream_id.as_str().to_owned(),
            version: event.stream_version,
            position: base + 1 + index as i64,
            event_type: event.event.event_type().to_owned(),
        })
        .collect();
    Outcome::accepted(record.command_id, refs)
}

const INSERT_EVENTS: &str = "INSERT INTO events (position, event_id, stream_id, stream_version, type, \
     schema_version, recorded_at, actor, command_id, correlation_id, causation_id, data) \
     SELECT p, e, s, v, t, $12, r, a, c, co, ca, d::jsonb FROM UNNEST($1::bigint[], $2::uuid[], \
     $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::text[], $8::uuid[], $9::uuid[], \
     $10::uuid[], $11::text[]) AS x(p, e, s, v, t, r, a, c, co, ca, d)";

const INSERT_COMMANDS: &str = "INSERT INTO commands (command_id, type, actor, accepted, outcome, \
     handled_at) SELECT i, t, a, ok, o::jsonb, now() FROM UNNEST($1::uuid[], $2::text[], \
     $3::text[], $4::bool[], $5::text[]) AS x(i, t, a, ok, o)";

impl EventStore {
    /// Appends a batch atomically and returns each command's outcome (with positions).
    ///
    /// Fails with [`StoreError::Conflict`] when the head moved past `expected_head`, a stream
    /// version is taken, or a command id was already recorded; nothing is written then.
    pub async fn append(&self, batch: &AppendBatch) -> Result<Vec<Outcome>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let count = batch.events.len() as i64;
        let base: i64 = sqlx::query_scalar(
            "UPDATE log_head SET position = position + $1 RETURNING position - $1",
        )
        .bind(count)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(expected) = batch.expected_head
            && expected != base
        {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "log head is {base}, decisions were made at {expected}"
            )));
        }
        let cols = EventColumns::build(&batch.events, base)?;
        if !batch.events.is_empty() {
            sqlx::query(INSERT_EVENTS)
                .bind(&cols.positions)
                .bind(&cols.event_ids)
                .bind(&cols.stream_ids)
                .bind(&cols.versions)
                .bind(&cols.types)
                .bind(&cols.recorded_at)
                .bind(&cols.actors)
                .bind(&cols.command_ids)
                .bind(&cols.correlation_ids)
                .bind(&cols.causation_ids)
                .bind(&cols.data)
                .bind(CURRENT_SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        let outcomes: Vec<Outcome> = batch
            .commands
            .iter()
            .map(|record| outcome_of(record, &batch.events, base))
            .collect();
        self.insert_commands(&mut tx, &batch.commands, &outcomes)
            .await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn insert_commands(
        &self,
        tx: &mut sqlx::PgTransaction<'_>,
        records: &[CommandRecord],
        outcomes: &[Outcome],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = records.iter().map(|r| r.command_id.0).collect();
        let types: Vec<&str> = records.iter().map(|r| r.command_type.as_str()).collect();
        let actors: Vec<&str> = records.iter().map(|r| r.actor.as_str()).collect();
        let accepted: Vec<bool> = outcomes.iter().map(|o| o.accepted).collect();
        let json = outcomes
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| StoreError::Corrupt(format!("outcome does not serialise: {err}")))?;
        sqlx::query(INSERT_COMMANDS)
            .bind(&ids)
            .bind(&types)
            .bind(&actors)
            .bind(&accepted)
            .bind(&json)
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
        Ok(())
    }
}
