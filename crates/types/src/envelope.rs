//! Envelopes: a command as it arrives on NATS, and an event as it is appended and read back.

use crate::command::{CommandType, Incoming, parse_payload};
use crate::event::{CURRENT_SCHEMA_VERSION, Event};
use crate::ids::{CommandId, EventId, StreamId};
use crate::rejection::{Rejection, RejectionCode};
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

/// Where a raw message came from, for ids when the body has none.
#[derive(Debug, Clone, Copy)]
pub struct MessageOrigin<'a> {
    /// Last subject token (the type the publisher meant).
    pub subject_type: &'a str,
    /// The `Nats-Msg-Id` header.
    pub msg_id: Option<&'a str>,
    /// Unique, stable key of this message (e.g. stream name and sequence).
    pub fallback_key: &'a str,
}

/// Namespace for command ids derived from message ids or stream sequences.
const COMMAND_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_9d7e_3a4b_4c7f_9e2a_7b1f_0c3d_8e6a);

fn unknown_actor() -> Actor {
    Actor::parse("unknown").unwrap_or_else(|_| unreachable!("'unknown' is a valid actor"))
}

fn text_field(body: &serde_json::Value, key: &str) -> Option<String> {
    body.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

fn uuid_field(body: &serde_json::Value, key: &str) -> Option<Uuid> {
    body.get(key)
        .and_then(serde_json::Value::as_str)
        .and_then(|raw| Uuid::parse_str(raw).ok())
}

/// Reads a raw command message: every refusal carries a stable code and says what was wrong.
pub fn parse_command(
    body: &[u8],
    origin: MessageOrigin<'_>,
) -> Result<ParsedCommand, Box<RefusedInput>> {
    let header_id = origin.msg_id.map(|raw| {
        Uuid::parse_str(raw).unwrap_or_else(|_| Uuid::new_v5(&COMMAND_ID_NAMESPACE, raw.as_bytes()))
    });
    let fallback_id = header_id
        .unwrap_or_else(|| Uuid::new_v5(&COMMAND_ID_NAMESPACE, origin.fallback_key.as_bytes()));
    let mut meta = CommandMeta {
        command_id: CommandId(fallback_id),
        command_type: origin.subject_type.to_owned(),
        actor: unknown_actor(),
        correlation_id: None,
        causation_id: None,
    };
    let refuse = |meta: &CommandMeta, code, message: String| {
        Box::new(RefusedInput {
            meta: meta.clone(),
            rejection: Rejection::new(code, message),
        })
    };

    let body: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => {
            return Err(refuse(
                &meta,
                RejectionCode::MalformedJson,
                format!("body is not valid JSON: {err}"),
            ));
        }
    };
    if !body.is_object() {
        return Err(refuse(
            &meta,
            RejectionCode::InvalidEnvelope,
            "body must be a JSON object".into(),
        ));
    }
    if let Some(kind) = text_field(&body, "type") {
        meta.command_type = kind;
    }
    if let Some(actor) = text_field(&body, "actor").and_then(|raw| Actor::parse(raw).ok()) {
        meta.actor = actor;
    }
    meta.correlation_id = uuid_field(&body, "correlation_id");
    meta.causation_id = uuid_field(&body, "causation_id");
    match uuid_field(&body, "command_id") {
        Some(id) => meta.command_id = CommandId(id),
        None => {
            let message = "command_id is required and must be a uuid".to_owned();
            return Err(refuse(&meta, RejectionCode::InvalidEnvelope, message));
        }
    }
    let envelope: CommandEnvelope = serde_json::from_value(body).map_err(|err| {
        refuse(
            &meta,
            RejectionCode::InvalidEnvelope,
            format!("envelope: {err}"),
        )
    })?;
    if let Err(err) = Actor::parse(envelope.actor.as_str()) {
        return Err(refuse(
            &meta,
            RejectionCode::InvalidEnvelope,
            format!("actor: {err}"),
        ));
    }
    if envelope.command_type != origin.subject_type {
        let message = format!(
            "type {:?} does not match the subject's last token {:?}",
            envelope.command_type, origin.subject_type
        );
        return Err(refuse(&meta, RejectionCode::TypeMismatch, message));
    }
    let Some(kind) = CommandType::from_name(&envelope.command_type) else {
        let message = format!("unknown command type {:?}", envelope.command_type);
        return Err(refuse(&meta, RejectionCode::UnknownCommandType, message));
    };
    match parse_payload(kind, envelope.payload) {
        Ok(incoming) => Ok(ParsedCommand { meta, incoming }),
        Err(err) => Err(refuse(&meta, RejectionCode::InvalidPayload, err.0)),
    }
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

/// An event as stored in the log and published on NATS (contract §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unique id; also the `Nats-Msg-Id` on the events stream.
    pub event_id: EventId,
    /// Global, strictly increasing in commit order.
    pub position: i64,
    /// `<stream type>-<id>`.
    pub stream_id: String,
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
    pub data: serde_json::Value,
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
            stream_id: "venv-x".into(),
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

    fn origin(msg_id: Option<&str>) -> MessageOrigin<'_> {
        MessageOrigin {
            subject_type: "cancel_run",
            msg_id,
            fallback_key: "STREAM:1",
        }
    }

    #[test]
    fn refused_messages_are_answered_under_a_stable_id() {
        let by_header = parse_command(b"{", origin(Some("not-a-uuid"))).expect_err("refused");
        let again = parse_command(b"{", origin(Some("not-a-uuid"))).expect_err("refused");
        assert_eq!(by_header.meta.command_id, again.meta.command_id);
        assert_eq!(by_header.rejection.code, RejectionCode::MalformedJson);
        let by_sequence = parse_command(b"{", origin(None)).expect_err("refused");
        assert_ne!(by_sequence.meta.command_id, by_header.meta.command_id);
    }

    #[test]
    fn a_valid_command_parses() {
        let run_id = uuid::Uuid::now_v7();
        let body = serde_json::json!({"command_id": uuid::Uuid::now_v7(), "type": "cancel_run",
            "actor": "jenkins", "payload": {"run_id": run_id}});
        let parsed = parse_command(body.to_string().as_bytes(), origin(None)).expect("parses");
        assert_eq!(parsed.meta.actor.as_str(), "jenkins");
        assert!(matches!(
            parsed.incoming,
            Incoming::Ready(crate::Command::CancelRun(_))
        ));
    }
}
