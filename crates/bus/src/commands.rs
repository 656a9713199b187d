//! Sending one command the way any caller does: subscribe to its outcome subject, publish it
//! through JetStream with `Nats-Msg-Id: <command_id>`, wait for the outcome. A command whose
//! outcome does not come in time is published again under the same id (the handler records
//! each command id once, so the retry is harmless).

use crate::names::BusNames;
use crate::setup::jetstream;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use runledger_types::{CommandId, Outcome};
use serde_json::{Value, json};
use std::time::Duration;

/// Why a command got no outcome.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A NATS operation failed.
    #[error("{what} failed: {message}")]
    Nats {
        /// The operation.
        what: &'static str,
        /// The client's message.
        message: String,
    },
    /// No outcome arrived on any attempt.
    #[error("no outcome for command {0} in time: is a handler running?")]
    NoOutcome(CommandId),
    /// The outcome could not be decoded.
    #[error("unreadable outcome for command {command_id}: {message}")]
    BadOutcome {
        /// The command.
        command_id: CommandId,
        /// The decoder's message.
        message: String,
    },
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

    /// Sends `command_type` with `payload` as `actor` under `command_id`; returns its outcome,
    /// accepted or rejected.
    pub async fn send(
        &self,
        command_id: CommandId,
        command_type: &str,
        actor: &str,
        payload: Value,
    ) -> Result<Outcome, SendError> {
        let body = json!({"command_id": command_id, "type": command_type, "actor": actor,
                          "payload": payload});
        let body = body.to_string();
        for attempt in 1..=self.attempts {
            let mut outcomes = self
                .client
                .subscribe(self.names.outcome_subject(command_id))
                .await
                .map_err(|err| nats("subscribe to the outcome", err))?;
            // The subscription goes out before the publish on this connection: no flush needed.
            let message = PublishMessage::build()
                .payload(body.clone().into())
                .message_id(command_id.to_string());
            self.js
                .send_publish(self.names.command_subject(command_type), message)
                .await
                .map_err(|err| nats("publish the command", err))?
                .await
                .map_err(|err| nats("store the command", err))?;
            match tokio::time::timeout(self.timeout, outcomes.next()).await {
                Ok(Some(message)) => {
                    return serde_json::from_slice(&message.payload).map_err(|err| {
                        SendError::BadOutcome {
                            command_id,
                            message: err.to_string(),
                        }
                    });
                }
                Ok(None) => return Err(nats("wait for the outcome", "subscription closed")),
                Err(_) => {
                    tracing::warn!(%command_id, attempt, "no outcome in time; publishing again")
                }
            }
        }
        Err(SendError::NoOutcome(command_id))
    }
}

fn nats(what: &'static str, err: impl std::fmt::Display) -> SendError {
    SendError::Nats {
        what,
        message: err.to_string(),
    }
}
