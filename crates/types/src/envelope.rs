//! Envelopes: a command as it arrives on NATS, and an event as it is appended and read back.

use crate::command::Incoming;
use crate::event::{CURRENT_SCHEMA_VERSION, Event};
use crate::ids::{CommandId, EventId, StreamId};
use crate::rejection::Rejection;
use crate::values::Actor;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The JSON body of a command message (contract §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Idempotency key.
    pub command_id: CommandId,
    /// Command type; equals the subject's last token.
    #[serde(rename = "type")]
    pub command_type: String,
    /// Who asks.
    pub actor: String,
    /// Ties related commands and events together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The message that caused this command (e.g. the event an executor reacts to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Type-specific payload.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// What is known of a command even when it is refused: enough to answer and record it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMeta {
    /// From the body, else the `Nats-Msg-Id` header, else derived from the message itself.
    pub command_id: CommandId,
    /// As sent (empty when absent).
    pub command_type: String,
    /// As sent, or `unknown` when absent or invalid.
    pub actor: Actor,
    /// As sent.
    pub correlation_id: Option<Uuid>,
    /// As sent.
    pub causation_id: Option<Uuid>,
}

/// A command that passed every syntactic check.
#[derive(Debug, Clone)]
pub struct ParsedCommand {
    /// Envelope fields.
    pub meta: CommandMeta,
    /// The payload, secrets still in clear.
    pub incoming: Incoming,
}

/// A command refused before the domain saw it.
#[derive(Debug, Clone)]
pub struct RefusedInput {
    /// Envelope fields, as far as they could be read.
    pub meta: CommandMeta,
    /// Why.
    pub rejection: Rejection,
}

/// An event ready to append; the store assigns its `position`.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Fresh id.
    pub event_id: EventId,
    /// Its stream.
    pub stream_id: StreamId,
    /// Its version within the stream (the optimistic-concurrency check).
    pub stream_version: i64,
    /// The fact itself.
    pub event: Event,
    /// When the command was decided.
    pub recorded_at: DateTime<Utc>,
    /// Who asked.
    pub actor: Actor,
    /// The command that produced it.
    pub command_id: CommandId,
    /// Carried from the command.
    pub correlation_id: Option<Uuid>,
    /// The message that caused it.
    pub causation_id: Option<Uuid>,
}

/// An event as stored in the log and published on NATS (contract §3). `D` is the type `data` is
/// held as: a parsed [`serde_json::Value`], or raw JSON text where it is only passed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord<D = serde_json::Value> {
    /// Unique id; also the `Nats-Msg-Id` on the events stream.
    pub event_id: EventId,
    /// Global, strictly increasing in commit order.
    pub position: i64,
    /// `<stream type>-<id>`.
    pub stream_id: StreamId,
    /// Version within the stream, from 1.
    pub stream_version: i64,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Shape version of `data`.
    pub schema_version: i32,
    /// Commit-side timestamp.
    pub recorded_at: DateTime<Utc>,
    /// Who asked.
    pub actor: String,
    /// The command that produced it.
    pub command_id: CommandId,
    /// Carried from the command.
    pub correlation_id: Option<Uuid>,
    /// The message that caused it.
    pub causation_id: Option<Uuid>,
    /// Type-specific data.
    pub data: D,
}

/// Why a stored event could not be read as a current [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum UpcastError {
    /// Written by a newer runledger than this one.
    #[error(
        "event at position {position} has schema version {version}, newer than {CURRENT_SCHEMA_VERSION}"
    )]
    FromTheFuture {
        /// Where.
        position: i64,
        /// Its version.
        version: i32,
    },
    /// The data does not match its type.
    #[error("event at position {position} ({event_type}) does not decode: {source}")]
    Decode {
        /// Where.
        position: i64,
        /// Its type.
        event_type: String,
        /// The decoder's complaint.
        source: serde_json::Error,
    },
}

/// An event whose `data` is kept as the JSON text the log returned (for relaying it unchanged).
pub type RawEventRecord = EventRecord<Box<serde_json::value::RawValue>>;

impl EventRecord {
    /// Decodes the event, first upcasting data written with an older schema version.
    ///
    /// This is the one place that knows old shapes: when an event's data changes, bump
    /// [`CURRENT_SCHEMA_VERSION`] and add a step here that rewrites version N-1 data to N.
    pub fn decode(&self) -> Result<Event, UpcastError> {
        if self.schema_version > CURRENT_SCHEMA_VERSION {
            return Err(UpcastError::FromTheFuture {
                position: self.position,
                version: self.schema_version,
            });
        }
        let data = upcast(&self.event_type, self.schema_version, self.data.clone());
        Event::from_parts(&self.event_type, data).map_err(|source| UpcastError::Decode {
            position: self.position,
            event_type: self.event_type.clone(),
            source,
        })
    }
}

impl RawEventRecord {
    /// Decodes the event straight from its JSON text (see [`decode_text`]).
    pub fn decode(&self) -> Result<Event, UpcastError> {
        decode_text(
            self.position,
            &self.event_type,
            self.schema_version,
            self.data.get(),
        )
    }
}

/// Decodes an event from its stored parts, with `data` as JSON text, without an intermediate
/// [`serde_json::Value`]: the projector's and time travel's hot path. Data written with an older
/// schema version is upcast first, as in [`EventRecord::decode`]. `position` only names the
/// event in errors.
pub fn decode_text(
    position: i64,
    event_type: &str,
    schema_version: i32,
    data: &str,
) -> Result<Event, UpcastError> {
    let decode_error = |source| UpcastError::Decode {
        position,
        event_type: event_type.to_owned(),
        source,
    };
    if schema_version > CURRENT_SCHEMA_VERSION {
        return Err(UpcastError::FromTheFuture {
            position,
            version: schema_version,
        });
    }
    if schema_version < CURRENT_SCHEMA_VERSION {
        let data: serde_json::Value = serde_json::from_str(data).map_err(decode_error)?;
        let data = upcast(event_type, schema_version, data);
        return Event::from_parts(event_type, data).map_err(decode_error);
    }
    Event::from_raw_parts(event_type, data).map_err(decode_error)
}

impl<D> EventRecord<D> {
    /// The same record with `data` replaced.
    pub fn with_data<E>(&self, data: E) -> EventRecord<E> {
        EventRecord {
            event_id: self.event_id,
            position: self.position,
            stream_id: self.stream_id.clone(),
            stream_version: self.stream_version,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            recorded_at: self.recorded_at,
            actor: self.actor.clone(),
            command_id: self.command_id,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            data,
        }
    }
}

/// Rewrites `data` from `version` to the current schema. Version 1 is the first and current one.
fn upcast(_event_type: &str, version: i32, data: serde_json::Value) -> serde_json::Value {
    debug_assert!(version <= CURRENT_SCHEMA_VERSION);
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::VenvRemoved;
    use crate::ids::VenvId;

    fn record(schema_version: i32, data: serde_json::Value) -> EventRecord {
        EventRecord {
            event_id: EventId::new(),
            position: 7,
            stream_id: StreamId::from_stored("venv-x".into()),
            stream_version: 1,
            event_type: "venv_removed".into(),
            schema_version,
            recorded_at: Utc::now(),
            actor: "admin".into(),
            command_id: CommandId::new(),
            correlation_id: None,
            causation_id: None,
            data,
        }
    }

    #[test]
    fn stored_events_decode_and_future_versions_are_refused() {
        let venv_id = VenvId::new();
        let data = serde_json::json!({ "venv_id": venv_id });
        let event = record(CURRENT_SCHEMA_VERSION, data.clone())
            .decode()
            .expect("decodes");
        assert_eq!(event, Event::VenvRemoved(VenvRemoved { venv_id }));
        let future = record(CURRENT_SCHEMA_VERSION + 1, data).decode();
        assert!(matches!(
            future,
            Err(UpcastError::FromTheFuture { position: 7, .. })
        ));
        let broken = record(CURRENT_SCHEMA_VERSION, serde_json::json!({ "nope": 1 })).decode();
        assert!(matches!(broken, Err(UpcastError::Decode { .. })));
    }
}
