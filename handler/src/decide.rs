//! One decision round: every command of a group decided in order against the lab, each seeing the
//! effects of the ones before it, collected into one append batch.

use crate::inbound::Inbound;
use chrono::{DateTime, SubsecRound, Utc};
use runledger_domain::{Lab, decide, evolve_compact};
use runledger_store::{AppendBatch, CommandRecord};
use runledger_types::envelope::CommandMeta;
use runledger_types::event::CommandRejected;
use runledger_types::{Event, EventId, NewEvent, Rejection};

/// The time events are recorded with, at the log's precision (microseconds), so an event handed
/// on in memory is identical to the same event read back from Postgres.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Decides `items` against `lab` (which is evolved as it goes) into one batch. `now` is both the
/// time every decision of the round is taken at and the time its events are recorded with.
pub(crate) fn decide_round(lab: &mut Lab, items: &[&Inbound], now: DateTime<Utc>) -> AppendBatch {
    let mut batch = AppendBatch {
        expected_head: Some(lab.position()),
        ..AppendBatch::default()
    };
    for item in items {
        let meta = item.meta();
        let correlation_id = correlation_of(meta);
        let span = tracing::debug_span!("command", command_id = %meta.command_id, command_type = %meta.command_type, actor = %meta.actor, %correlation_id);
        let _entered = span.enter();
        match &item.command {
            Ok(prepared) => match decide(lab, &prepared.meta.actor, &prepared.command, now) {
                Ok(events) => record(lab, &mut batch, &prepared.meta, events, None, now),
                Err(rejection) => reject(lab, &mut batch, &prepared.meta, rejection, now),
            },
            Err(refused) => reject(
                lab,
                &mut batch,
                &refused.meta,
                refused.rejection.clone(),
                now,
            ),
        }
    }
    batch
}

/// Records a refusal: a `command_rejected` event in the command's own stream.
pub(crate) fn reject(
    lab: &mut Lab,
    batch: &mut AppendBatch,
    meta: &CommandMeta,
    rejection: Rejection,
    now: DateTime<Utc>,
) {
    tracing::debug!(command_id = %meta.command_id, code = %rejection.code, "command rejected");
    let event = Event::CommandRejected(CommandRejected {
        command_id: meta.command_id,
        command_type: meta.command_type.clone(),
        error: rejection.clone(),
    });
    record(lab, batch, meta, vec![event], Some(rejection), now);
}

/// The command's correlation id; a command sent without one starts its own chain, named by its
/// command id, which its events and everything they cause carry on.
fn correlation_of(meta: &CommandMeta) -> uuid::Uuid {
    meta.correlation_id.unwrap_or(meta.command_id.0)
}

fn record(
    lab: &mut Lab,
    batch: &mut AppendBatch,
    meta: &CommandMeta,
    events: Vec<Event>,
    rejection: Option<Rejection>,
    now: DateTime<Utc>,
) {
    let start = batch.events.len();
    for event in events {
        let stream_id = event.stream_id();
        let stream_version = lab.stream_version(&stream_id) + 1;
        evolve_compact(lab, &event);
        let event_id = EventId::new();
        tracing::debug!(%event_id, %stream_id, event_type = event.event_type(), "event decided");
        batch.events.push(NewEvent {
            event_id,
            stream_id,
            stream_version,
            event,
            recorded_at: now,
            actor: meta.actor.clone(),
            command_id: meta.command_id,
            correlation_id: Some(correlation_of(meta)),
            causation_id: Some(meta.causation_id.unwrap_or(meta.command_id.0)),
        });
    }
    batch.commands.push(CommandRecord {
        command_id: meta.command_id,
        command_type: meta.command_type.clone(),
        actor: meta.actor.as_str().to_owned(),
        events: start..batch.events.len(),
        rejection,
    });
}
