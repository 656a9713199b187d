//! One decision round: every command of a group decided in order against the lab, each seeing the
//! effects of the ones before it, collected into one append batch.

use crate::inbound::Inbound;
use chrono::{DateTime, SubsecRound, Utc};
use runledger_domain::{Lab, decide, evolve_compact};
use runledger_store::{AppendBatch, CommandRecord};
use runledger_types::envelope::CommandMeta;
use runledger_types::event::{CommandRejected, json_len};
use runledger_types::{Event, EventId, NewEvent, Rejection, RejectionCode};

/// The time events are recorded with, at the log's precision (microseconds), so an event handed
/// on in memory is identical to the same event read back from Postgres.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Decides `items` against `lab` (which is evolved as it goes) into one batch. `now` is both the
/// time every decision of the round is taken at and the time its events are recorded with.
///
/// A decision with an event of more than `max_event_bytes` (as JSON) is refused with
/// `event_too_large` instead: the relay could never publish it, and every event after it would
/// wait behind it.
pub(crate) fn decide_round(
    lab: &mut Lab,
    items: &[&Inbound],
    now: DateTime<Utc>,
    max_event_bytes: usize,
) -> AppendBatch {
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
            Ok(prepared) => match decide(lab, &prepared.meta.actor, &prepared.command, now)
                .and_then(|events| fitting(events, max_event_bytes))
            {
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

/// Room left in a NATS message for what the relay adds to an event's JSON: the envelope of the
/// log record (ids, stream, positions, time, actor) and the message's headers.
pub(crate) const ENVELOPE_BYTES: usize = 4 * 1024;

/// The largest event (as JSON) that one message of the event stream carries, for a server
/// whose `max_payload` is `max_payload` (0, unknown: NATS's default of 1 MiB).
pub(crate) fn max_event_bytes(max_payload: usize) -> usize {
    let max_payload = if max_payload == 0 {
        1024 * 1024
    } else {
        max_payload
    };
    max_payload.saturating_sub(ENVELOPE_BYTES)
}

/// `events` if each fits in one message of the event stream; else `event_too_large`, naming
/// the first that does not.
fn fitting(events: Vec<Event>, max_event_bytes: usize) -> Result<Vec<Event>, Rejection> {
    let Some((event, bytes)) = events
        .iter()
        .map(|event| (event, json_len(event)))
        .find(|(_, bytes)| *bytes > max_event_bytes)
    else {
        return Ok(events);
    };
    Err(Rejection::new(
        RejectionCode::EventTooLarge,
        format!(
            "the command would record a `{}` event of {bytes} bytes, and one message of the \
             event stream carries at most {max_event_bytes} (the NATS server's max_payload less \
             the envelope): nothing was recorded",
            event.event_type()
        ),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use runledger_types::CommandId;

    fn rejected_event(message_bytes: usize) -> Event {
        Event::CommandRejected(CommandRejected {
            command_id: CommandId::new(),
            command_type: "start_run".into(),
            error: Rejection::new(RejectionCode::UnknownTestCase, "x".repeat(message_bytes)),
        })
    }

    #[test]
    fn the_limit_leaves_room_for_the_envelope() {
        assert_eq!(max_event_bytes(1024 * 1024), 1024 * 1024 - ENVELOPE_BYTES);
        assert_eq!(max_event_bytes(0), 1024 * 1024 - ENVELOPE_BYTES);
        assert_eq!(max_event_bytes(100), 0);
    }

    #[test]
    fn a_decision_with_an_event_past_the_limit_is_refused_whole() {
        let small = rejected_event(10);
        let limit = json_len(&small) + 100;
        assert_eq!(fitting(vec![small.clone()], limit), Ok(vec![small.clone()]));
        let refused = fitting(vec![small, rejected_event(200)], limit).unwrap_err();
        assert_eq!(refused.code, RejectionCode::EventTooLarge);
        assert!(
            refused.message.contains("`command_rejected` event of"),
            "{}",
            refused.message
        );
    }
}
