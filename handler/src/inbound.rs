//! Turning raw JetStream messages into commands the domain can decide: parse, validate, and
//! protect secrets (seal credentials, hash passwords) off the async runtime.

use async_nats::jetstream::Message;
use runledger_bus::{BusNames, MSG_ID_HEADER};
use runledger_secrets::Keyring;
use runledger_types::envelope::{CommandMeta, RefusedInput};
use runledger_types::parse::{MessageOrigin, parse_command};
use runledger_types::{Command, Incoming, Rejection, RejectionCode};

/// A command ready to decide, with its envelope.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub meta: CommandMeta,
    pub command: Command,
}

/// One message and what became of it.
pub(crate) struct Inbound {
    pub msg: Message,
    pub command: Result<Prepared, Box<RefusedInput>>,
}

impl Inbound {
    /// The command id the message is answered under.
    pub fn meta(&self) -> &CommandMeta {
        match &self.command {
            Ok(prepared) => &prepared.meta,
            Err(refused) => &refused.meta,
        }
    }
}

fn parse(msg: &Message, names: &BusNames) -> Parsed {
    let msg_id = msg
        .headers
        .as_ref()
        .and_then(|headers| headers.get(MSG_ID_HEADER))
        .map(|value| value.as_str());
    let (stream, sequence) = msg
        .info()
        .map_or(("", 0), |info| (info.stream, info.stream_sequence));
    let origin = MessageOrigin {
        subject_type: names.command_type_of(msg.subject.as_str()),
        msg_id,
        stream,
        sequence,
    };
    parse_command(&msg.payload, origin).map(|parsed| (parsed.meta, parsed.incoming))
}

fn protect(
    meta: CommandMeta,
    incoming: Incoming,
    keyring: &Keyring,
) -> Result<Prepared, Box<RefusedInput>> {
    match incoming.protect(keyring) {
        Ok(command) => Ok(Prepared { meta, command }),
        Err(err) => Err(Box::new(RefusedInput {
            meta,
            rejection: Rejection::new(RejectionCode::InvalidPayload, err.to_string()),
        })),
    }
}

type Parsed = Result<(CommandMeta, Incoming), Box<RefusedInput>>;

fn finish(parsed: Vec<(Message, Parsed)>, keyring: &Keyring) -> Vec<Inbound> {
    parsed
        .into_iter()
        .map(|(msg, parsed)| Inbound {
            msg,
            command: parsed.and_then(|(meta, incoming)| protect(meta, incoming, keyring)),
        })
        .collect()
}

/// Parses every message; secrets are sealed/hashed on a blocking thread (argon2 is slow by design).
pub(crate) async fn prepare(
    messages: Vec<Message>,
    names: &BusNames,
    keyring: &Keyring,
) -> Vec<Inbound> {
    let parsed: Vec<(Message, Parsed)> = messages
        .into_iter()
        .map(|msg| {
            let parsed = parse(&msg, names);
            (msg, parsed)
        })
        .collect();
    let needs_secrets = parsed.iter().any(|(_, parsed)| {
        matches!(parsed, Ok((_, incoming)) if !matches!(incoming, Incoming::Ready(_)))
    });
    if !needs_secrets {
        return finish(parsed, keyring);
    }
    let keyring = keyring.clone();
    // A join error only happens while the runtime shuts down: the unacked messages are redelivered.
    tokio::task::spawn_blocking(move || finish(parsed, &keyring))
        .await
        .unwrap_or_default()
}
