//! Sending one command the way any caller does: subscribe to its outcome subject, publish it
//! through JetStream with `Nats-Msg-Id: <command_id>`, wait for the outcome. A command whose
//! outcome does not come in time, or whose publish failed, is published again under the same id
//! (the handler records each command id once, so the retry is harmless), up to the sender's
//! attempts. A publish JetStream drops as a duplicate, whose outcome then does not come either,
//! ends the attempts at once ([`SendError::OutcomeMissed`]).
//!
//! Callers send typed payloads ([`CommandSender::send`]): the type name comes from the payload's
//! Rust type. [`CommandSender::send_raw`] takes a type name and JSON for `runledger send`, which
//! passes on whatever its user typed.

use crate::names::BusNames;
use crate::setup::jetstream;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures::StreamExt;
use runledger_types::command::CommandPayload;
use runledger_types::{CommandEnvelope, CommandId, Outcome};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// A boxed error of the NATS client, kept as the source of a [`SendError`].
type NatsCause = Box<dyn std::error::Error + Send + Sync>;

/// Why a command got no outcome.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A NATS operation failed (on the last attempt).
    #[error("{what} failed: {source}")]
    Nats {
        /// The operation.
        what: &'static str,
        /// The client's error.
        #[source]
        source: NatsCause,
    },
    /// No outcome arrived within the timeout, on every attempt.
    #[error(
        "no outcome for command {command_id} after {attempts} attempt(s): is a handler running?"
    )]
    NoOutcome {
        /// The command.
        command_id: CommandId,
        /// How many times it was published.
        attempts: u32,
    },
    /// JetStream had stored the command already (a publish under the same id before), and its
    /// outcome, published while this sender could not hear it, did not come again: publishing
    /// once more cannot help, as JetStream drops it as a duplicate. The command was handled or
    /// will be; a report that is safe to repeat may be sent again under a new id.
    #[error(
        "command {command_id} was stored before and its outcome was missed (published while this \
         client was disconnected); look its effect up, or send it again under a new command id"
    )]
    OutcomeMissed {
        /// The command.
        command_id: CommandId,
    },
    /// The outcome could not be decoded.
    #[error("unreadable outcome for command {command_id}")]
    BadOutcome {
        /// The command.
        command_id: CommandId,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The command could not be encoded as JSON.
    #[error("command {command_type} could not be encoded")]
    Encode {
        /// The command's type.
        command_type: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Who sends a command and the chain it belongs to: the envelope's fields besides its id, type
/// and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Who asks: a username, or a system such as `executor:<name>`.
    pub actor: String,
    /// The message that caused the command (e.g. the event an executor acts on).
    pub causation_id: Option<Uuid>,
    /// Ties the command to the chain it continues.
    pub correlation_id: Option<Uuid>,
}

impl Origin {
    /// Sent by `actor`, starting a chain of its own.
    pub fn actor(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            causation_id: None,
            correlation_id: None,
        }
    }
}

/// Publishes commands and waits for their outcomes; cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandSender {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    names: BusNames,
    timeout: Duration,
    attempts: u32,
}

/// A command encoded for the wire.
#[derive(Debug, Clone)]
struct Encoded {
    command_id: CommandId,
    command_type: String,
    body: Bytes,
}

impl CommandSender {
    /// A sender that waits `timeout` per attempt and publishes a command at most `attempts` times.
    pub fn new(
        client: async_nats::Client,
        names: BusNames,
        timeout: Duration,
        attempts: u32,
    ) -> Self {
        Self {
            js: jetstream(client.clone()),
            client,
            names,
            timeout,
            attempts: attempts.max(1),
        }
    }

    /// Sends `command` as `actor` under `command_id`; returns its outcome, accepted or rejected.
    pub async fn send<C: CommandPayload>(
        &self,
        command_id: CommandId,
        actor: &str,
        command: &C,
    ) -> Result<Outcome, SendError> {
        self.send_from(command_id, &Origin::actor(actor), command)
            .await
    }

    /// Sends `command` from `origin` (actor, causation and correlation) under `command_id`.
    pub async fn send_from<C: CommandPayload>(
        &self,
        command_id: CommandId,
        origin: &Origin,
        command: &C,
    ) -> Result<Outcome, SendError> {
        let encoded = encode(command_id, origin, C::TYPE.as_str(), payload(command)?)?;
        self.deliver(&encoded, None).await
    }

    /// Sends a command given by its type name and JSON payload, unchecked: for `runledger send`,
    /// which passes on what its user typed and lets the handler judge it.
    pub async fn send_raw(
        &self,
        command_id: CommandId,
        origin: &Origin,
        command_type: &str,
        payload: Value,
    ) -> Result<Outcome, SendError> {
        let encoded = encode(command_id, origin, command_type, payload)?;
        self.deliver(&encoded, None).await
    }

    /// Publishes `command` now, queued on the connection behind the commands published before
    /// it, without waiting for JetStream's ack or the outcome: [`Pending::outcome`] waits for
    /// them (and publishes again under the same id while none comes). For ordered series, such
    /// as a run's output.
    pub async fn publish_in_order(
        &self,
        command_id: CommandId,
        origin: &Origin,
        command_type: &str,
        payload: Value,
    ) -> Result<Pending, SendError> {
        let encoded = encode(command_id, origin, command_type, payload)?;
        let (outcomes, stored) = self.publish(&encoded).await?;
        Ok(Pending {
            sender: self.clone(),
            encoded,
            outcomes,
            stored,
        })
    }

    /// Waits for the outcome of `encoded`, publishing it (again) while none arrives, up to the
    /// attempts allowed. `published` is the subscription of a first publish already stored.
    async fn deliver(
        &self,
        encoded: &Encoded,
        mut published: Option<async_nats::Subscriber>,
    ) -> Result<Outcome, SendError> {
        let command_id = encoded.command_id;
        let mut last_error = None;
        for attempt in 1..=self.attempts {
            let (subscription, duplicate) = match published.take() {
                Some(subscription) => (Ok(subscription), false),
                None => match self.publish_stored(encoded).await {
                    Ok((subscription, duplicate)) => (Ok(subscription), duplicate),
                    Err(err) => (Err(err), false),
                },
            };
            let waited = match subscription {
                Ok(mut outcomes) => self.wait(&mut outcomes, command_id).await,
                Err(err) => Err(err),
            };
            match waited {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) if duplicate => return Err(SendError::OutcomeMissed { command_id }),
                Ok(None) => {
                    tracing::warn!(%command_id, attempt, "no outcome in time; publishing again")
                }
                Err(err) => {
                    tracing::warn!(%command_id, attempt, error = %err, "sending failed; trying again");
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or(SendError::NoOutcome {
            command_id,
            attempts: self.attempts,
        }))
    }

    /// Publishes `encoded` and returns once JetStream has stored it, with whether JetStream
    /// had stored it before (a duplicate, dropped).
    async fn publish_stored(
        &self,
        encoded: &Encoded,
    ) -> Result<(async_nats::Subscriber, bool), SendError> {
        let (outcomes, stored) = self.publish(encoded).await?;
        let ack = stored.await.map_err(|err| nats("store the command", err))?;
        Ok((outcomes, ack.duplicate))
    }

    /// Subscribes to the command's outcome, then publishes it. No flush is needed between the
    /// two: the subscription goes out first on the same connection, so the server knows it
    /// before the command can be handled.
    async fn publish(
        &self,
        encoded: &Encoded,
    ) -> Result<(async_nats::Subscriber, PublishAckFuture), SendError> {
        let outcomes = self
            .client
            .subscribe(self.names.outcome_subject(encoded.command_id))
            .await
            .map_err(|err| nats("subscribe to the outcome", err))?;
        let message = PublishMessage::build()
            .payload(encoded.body.clone())
            .message_id(encoded.command_id.to_string());
        let stored = self
            .js
            .send_publish(self.names.command_subject(&encoded.command_type), message)
            .await
            .map_err(|err| nats("publish the command", err))?;
        Ok((outcomes, stored))
    }

    /// The outcome on `outcomes`; `Ok(None)` when it did not arrive within the timeout.
    async fn wait(
        &self,
        outcomes: &mut async_nats::Subscriber,
        command_id: CommandId,
    ) -> Result<Option<Outcome>, SendError> {
        let Ok(next) = tokio::time::timeout(self.timeout, outcomes.next()).await else {
            return Ok(None);
        };
        let Some(message) = next else {
            return Err(nats("wait for the outcome", "subscription closed"));
        };
        serde_json::from_slice(&message.payload)
            .map(Some)
            .map_err(|source| SendError::BadOutcome { command_id, source })
    }
}

/// A command published by [`CommandSender::publish_in_order`] whose outcome is still to come.
pub struct Pending {
    sender: CommandSender,
    encoded: Encoded,
    outcomes: async_nats::Subscriber,
    stored: PublishAckFuture,
}

impl Pending {
    /// The command's id.
    pub fn command_id(&self) -> CommandId {
        self.encoded.command_id
    }

    /// Waits for JetStream's ack and the outcome; a command JetStream did not store, or whose
    /// outcome does not come in time, is published again under the same id.
    pub async fn outcome(self) -> Result<Outcome, SendError> {
        let published = match self.stored.await {
            Ok(_) => Some(self.outcomes),
            Err(err) => {
                tracing::warn!(command_id = %self.encoded.command_id, error = %err,
                               "command not stored; publishing it again");
                None
            }
        };
        self.sender.deliver(&self.encoded, published).await
    }
}

/// `command`'s payload as JSON.
fn payload<C: CommandPayload>(command: &C) -> Result<Value, SendError> {
    serde_json::to_value(command).map_err(|source| SendError::Encode {
        command_type: C::TYPE.as_str().to_owned(),
        source,
    })
}

/// The body (JSON) of `command` sent from `origin` under `command_id`, for a caller that
/// publishes it its own way (the handler's lease watch, which answers itself and waits for no
/// outcome).
pub fn command_body<C: CommandPayload>(
    command_id: CommandId,
    origin: &Origin,
    command: &C,
) -> Result<Bytes, SendError> {
    Ok(encode(command_id, origin, C::TYPE.as_str(), payload(command)?)?.body)
}

/// The contract's command body (§2): the envelope around `payload`.
fn encode(
    command_id: CommandId,
    origin: &Origin,
    command_type: &str,
    payload: Value,
) -> Result<Encoded, SendError> {
    let envelope = CommandEnvelope {
        command_id,
        command_type: command_type.to_owned(),
        actor: origin.actor.clone(),
        correlation_id: origin.correlation_id,
        causation_id: origin.causation_id,
        payload,
    };
    let body = serde_json::to_vec(&envelope).map_err(|source| SendError::Encode {
        command_type: command_type.to_owned(),
        source,
    })?;
    Ok(Encoded {
        command_id,
        command_type: command_type.to_owned(),
        body: body.into(),
    })
}

fn nats(what: &'static str, err: impl Into<NatsCause>) -> SendError {
    SendError::Nats {
        what,
        source: err.into(),
    }
}
