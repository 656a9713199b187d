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
            let data = event
                .event
                .data_json()
                .map_err(|err| StoreError::Corrupt(format!("event does not serialise: {err}")))?;
            Ok(RawEventRecord {
                event_id: event.event_id,
                position: base + offset,
                stream_id: event.stream_id.as_str().to_owned(),
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
    /// Fails with [`StoreError::Conflict`] when the head moved past `expected_head` or a stream
    /// version is taken, and with [`StoreError::AlreadyHandled`] when a command id was recorded
    /// already; nothing is written then.
    pub async fn append(&self, batch: &AppendBatch) -> Result<Appended, StoreError> {
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
        let records = records(&batch.events, base)?;
        insert_events(&mut tx, &records).await?;
        let outcomes: Vec<Outcome> = batch
            .commands
            .iter()
            .map(|record| outcome_of(record, &batch.events, base))
            .collect();
        self.insert_commands(&mut tx, &batch.commands, &outcomes)
            .await?;
        tx.commit().await?;
        Ok(Appended {
            outcomes,
            events: records,
        })
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

async fn insert_events(
    tx: &mut sqlx::PgTransaction<'_>,
    records: &[RawEventRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&RawEventRecord) -> &str| records.iter().map(f).collect::<Vec<&str>>();
    let positions: Vec<i64> = records.iter().map(|r| r.position).collect();
    let event_ids: Vec<Uuid> = records.iter().map(|r| r.event_id.0).collect();
    let versions: Vec<i64> = records.iter().map(|r| r.stream_version).collect();
    let recorded_at: Vec<DateTime<Utc>> = records.iter().map(|r| r.recorded_at).collect();
    let command_ids: Vec<Uuid> = records.iter().map(|r| r.command_id.0).collect();
    let correlation_ids: Vec<Option<Uuid>> = records.iter().map(|r| r.correlation_id).collect();
    let causation_ids: Vec<Option<Uuid>> = records.iter().map(|r| r.causation_id).collect();
    sqlx::query(INSERT_EVENTS)
        .bind(&positions)
        .bind(&event_ids)
        .bind(column(|r| &r.stream_id))
        .bind(&versions)
        .bind(column(|r| &r.event_type))
        .bind(&recorded_at)
        .bind(column(|r| &r.actor))
        .bind(&command_ids)
        .bind(&correlation_ids)
        .bind(&causation_ids)
        .bind(column(|r| r.data.get()))
        .bind(CURRENT_SCHEMA_VERSION)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    Ok(())
}
