//! Reading raw command messages from NATS into validated commands, or into refusals that say
//! exactly what was wrong and under which command id to answer.

use crate::command::{CommandType, parse_payload};
use crate::envelope::{CommandEnvelope, CommandMeta, ParsedCommand, RefusedInput};
use crate::ids::CommandId;
use crate::rejection::{Rejection, RejectionCode};
use crate::values::Actor;
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// Where a raw message came from, for ids when the body has none.
#[derive(Debug, Clone, Copy)]
pub struct MessageOrigin<'a> {
    /// Last subject token (the type the publisher meant).
    pub subject_type: &'a str,
    /// The `Nats-Msg-Id` header.
    pub msg_id: Option<&'a str>,
    /// The stream the message was read from.
    pub stream: &'a str,
    /// Its sequence in that stream: with `stream`, a unique and stable key of the message.
    pub sequence: u64,
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

/// The envelope as borrowed from the body: the payload stays JSON text until its type is known.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    command_id: Uuid,
    #[serde(rename = "type")]
    command_type: String,
    actor: String,
    #[serde(default)]
    correlation_id: Option<Uuid>,
    #[serde(default)]
    causation_id: Option<Uuid>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
}

fn refuse(meta: &CommandMeta, code: RejectionCode, message: String) -> Box<RefusedInput> {
    Box::new(RefusedInput {
        meta: meta.clone(),
        rejection: Rejection::new(code, message),
    })
}

/// Reads a raw command message: every refusal carries a stable code and says what was wrong.
///
/// A well-formed envelope is read in one pass with the payload left as raw text; anything else
/// goes through [`diagnose`], which finds the first problem and as much of the envelope as it can.
pub fn parse_command(
    body: &[u8],
    origin: MessageOrigin<'_>,
) -> Result<ParsedCommand, Box<RefusedInput>> {
    let Ok(envelope) = serde_json::from_slice::<RawEnvelope<'_>>(body) else {
        return Err(diagnose(body, origin));
    };
    let mut meta = CommandMeta {
        command_id: CommandId(envelope.command_id),
        command_type: envelope.command_type,
        actor: unknown_actor(),
        correlation_id: envelope.correlation_id,
        causation_id: envelope.causation_id,
    };
    meta.actor = Actor::parse(envelope.actor).map_err(|err| {
        refuse(
            &meta,
            RejectionCode::InvalidEnvelope,
            format!("actor: {err}"),
        )
    })?;
    if meta.command_type != origin.subject_type {
        let message = format!(
            "type {:?} does not match the subject's last token {:?}",
            meta.command_type, origin.subject_type
        );
        return Err(refuse(&meta, RejectionCode::TypeMismatch, message));
    }
    let Some(kind) = CommandType::from_name(&meta.command_type) else {
        let message = format!("unknown command type {:?}", meta.command_type);
        return Err(refuse(&meta, RejectionCode::UnknownCommandType, message));
    };
    match parse_payload(kind, envelope.payload.map_or("null", RawValue::get)) {
        Ok(incoming) => Ok(ParsedCommand { meta, incoming }),
        Err(err) => Err(refuse(&meta, RejectionCode::InvalidPayload, err.0)),
    }
}

/// Why a body is not a well-formed envelope: the first problem found, with the id, type and actor
/// it names where they can be read (so the refusal is answered and recorded under them).
fn diagnose(body: &[u8], origin: MessageOrigin<'_>) -> Box<RefusedInput> {
    let header_id = origin.msg_id.map(|raw| {
        Uuid::parse_str(raw).unwrap_or_else(|_| Uuid::new_v5(&COMMAND_ID_NAMESPACE, raw.as_bytes()))
    });
    let fallback_id = header_id.unwrap_or_else(|| {
        let key = format!("{}:{}", origin.stream, origin.sequence);
        Uuid::new_v5(&COMMAND_ID_NAMESPACE, key.as_bytes())
    });
    let mut meta = CommandMeta {
        command_id: CommandId(fallback_id),
        command_type: origin.subject_type.to_owned(),
        actor: unknown_actor(),
        correlation_id: None,
        causation_id: None,
    };
    let body: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => {
            let message = format!("body is not valid JSON: {err}");
            return refuse(&meta, RejectionCode::MalformedJson, message);
        }
    };
    if !body.is_object() {
        let message = "body must be a JSON object".to_owned();
        return refuse(&meta, RejectionCode::InvalidEnvelope, message);
    }
    if let Some(kind) = text_field(&body, "type") {
        meta.command_type = kind;
    }
    if let Some(actor) = text_field(&body, "actor").and_then(|raw| Actor::parse(raw).ok()) {
        meta.actor = actor;
    }
    meta.correlation_id = uuid_field(&body, "correlation_id");
    meta.causation_id = uuid_field(&body, "causation_id");
    let Some(id) = uuid_field(&body, "command_id") else {
        let message = "command_id is required and must be a uuid".to_owned();
        return refuse(&meta, RejectionCode::InvalidEnvelope, message);
    };
    meta.command_id = CommandId(id);
    let message = match serde_json::from_value::<CommandEnvelope>(body) {
        Err(err) => format!("envelope: {err}"),
        Ok(_) => "envelope: malformed".to_owned(),
    };
    refuse(&meta, RejectionCode::InvalidEnvelope, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Incoming;

    fn origin(msg_id: Option<&str>) -> MessageOrigin<'_> {
        MessageOrigin {
            subject_type: "cancel_run",
            msg_id,
            stream: "STREAM",
            sequence: 1,
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
    #[test]
    fn payload_errors_name_the_field() {
        let body = serde_json::json!({"command_id": uuid::Uuid::now_v7(), "type": "cancel_run",
            "actor": "jenkins", "payload": {"run_id": "nope"}});
        let refused =
            parse_command(body.to_string().as_bytes(), origin(None)).expect_err("refused");
        assert_eq!(refused.rejection.code, RejectionCode::InvalidPayload);
        assert!(
            refused.rejection.message.starts_with("payload.run_id:"),
            "{}",
            refused.rejection.message
        );
    }
}
