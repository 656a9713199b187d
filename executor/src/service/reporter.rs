//! The NATS [`Reporter`](crate::driver::Reporter): each report is a command published through
//! JetStream on `<prefix>.commands.<type>` with `Nats-Msg-Id: <command_id>`, answered on
//! `<prefix>.outcomes.<command_id>` (subscribed to before publishing). A report whose outcome
//! does not arrive in time is published again with the same command id, so the handler's
//! de-duplication makes the retry harmless.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;
use runledger_bus::BusNames;
use runledger_types::{CommandId, EventId, Outcome};
use serde_json::{Value, json};

use crate::driver::{ReportError, Reporter};

/// Why a report got no outcome.
#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    /// A NATS call failed on the last attempt.
    #[error("{what} failed: {message}")]
    Nats {
        /// The operation.
        what: &'static str,
        /// The client's message.
        message: String,
    },
    /// No outcome arrived within the timeout, on every attempt.
    #[error("no outcome for command {command_id} after {attempts} attempts")]
    NoOutcome {
        /// The report's command id.
        command_id: CommandId,
        /// How many times it was published.
        attempts: u32,
    },
    /// The outcome could not be read.
    #[error("unreadable outcome for command {command_id}: {message}")]
    BadOutcome {
        /// The report's command id.
        command_id: CommandId,
        /// The decoder's message.
        message: String,
    },
}

/// Publishes reports as the executor `executor:<name>`; cheap to clone.
#[derive(Debug, Clone)]
pub struct NatsReporter {
    client: async_nats::Client,
    js: jetstream::Context,
    names: BusNames,
    actor: String,
    timeout: Duration,
    attempts: u32,
    causation_id: Option<EventId>,
}

impl NatsReporter {
    /// A reporter for the executor `name` (actor `executor:<name>`) that waits `timeout` for
    /// each outcome and publishes a report at most `attempts` times.
    pub fn new(
        client: async_nats::Client,
        names: BusNames,
        name: &str,
        timeout: Duration,
        attempts: u32,
    ) -> Self {
        Self {
            js: runledger_bus::jetstream(client.clone()),
            client,
            names,
            actor: format!("executor:{name}"),
            timeout,
            attempts: attempts.max(1),
            causation_id: None,
        }
    }

    /// The same reporter, with reports caused by the event `causation_id` (a work item's event).
    pub fn caused_by(&self, causation_id: EventId) -> Self {
        Self {
            causation_id: Some(causation_id),
            ..self.clone()
        }
    }

    /// The actor reports are sent as.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Sends one report under a fresh command id and returns its outcome, accepted or not.
    #[tracing::instrument(skip(self, payload), fields(command_id))]
    pub async fn send(&self, command_type: &str, payload: Value) -> Result<Outcome, ReporterError> {
        let command_id = CommandId::new();
        tracing::Span::current().record("command_id", tracing::field::display(command_id));
        let body = json!({
            "command_id": command_id,
            "type": command_type,
            "actor": self.actor,
            "causation_id": self.causation_id,
            "payload": payload,
        });
        let body = serde_json::to_vec(&body).map_err(|err| ReporterError::BadOutcome {
            command_id,
            message: err.to_string(),
        })?;
        let mut last_error = None;
        for attempt in 1..=self.attempts {
            match self.attempt(command_id, command_type, &body).await {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => tracing::warn!(attempt, "no outcome in time; publishing again"),
                Err(err) => {
                    tracing::warn!(attempt, error = %err, "report failed; trying again");
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or(ReporterError::NoOutcome {
            command_id,
            attempts: self.attempts,
        }))
    }

    /// One publish and wait: `Ok(None)` when the outcome did not arrive within the timeout.
    async fn attempt(
        &self,
        command_id: CommandId,
        command_type: &str,
        body: &[u8],
    ) -> Result<Option<Outcome>, ReporterError> {
        let mut outcomes = self
            .client
            .subscribe(self.names.outcome_subject(command_id))
            .await
            .map_err(|err| nats("subscribe to the outcome", err))?;
        self.client
            .flush()
            .await
            .map_err(|err| nats("flush", err))?;
        let message = PublishMessage::build()
            .payload(body.to_vec().into())
            .message_id(command_id.to_string());
        self.js
            .send_publish(self.names.command_subject(command_type), message)
            .await
            .map_err(|err| nats("publish the report", err))?
            .await
            .map_err(|err| nats("store the report", err))?;
        let Ok(next) = tokio::time::timeout(self.timeout, outcomes.next()).await else {
            return Ok(None);
        };
        let Some(message) = next else {
            return Err(ReporterError::Nats {
                what: "wait for the outcome",
                message: "subscription closed".into(),
            });
        };
        serde_json::from_slice(&message.payload)
            .map(Some)
            .map_err(|err| ReporterError::BadOutcome {
                command_id,
                message: err.to_string(),
            })
    }
}

fn nats(what: &'static str, err: impl std::fmt::Display) -> ReporterError {
    ReporterError::Nats {
        what,
        message: err.to_string(),
    }
}

impl Reporter for NatsReporter {
    async fn report(&self, command_type: &'static str, payload: Value) -> Result<(), ReportError> {
        let outcome = self
            .send(command_type, payload)
            .await
            .map_err(|err| ReportError {
                command_type,
                reason: err.to_string(),
            })?;
        match (outcome.accepted, outcome.error) {
            (true, _) => Ok(()),
            (false, error) => Err(ReportError {
                command_type,
                reason: error.map_or_else(
                    || "rejected".to_owned(),
                    |e| format!("rejected: {} ({})", e.code.as_str(), e.message),
                ),
            }),
        }
    }
}
