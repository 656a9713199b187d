//! The NATS [`Reporter`](crate::driver::Reporter): each report is a command published through
//! JetStream on `<prefix>.commands.<type>` with `Nats-Msg-Id: <command_id>`, answered on
//! `<prefix>.outcomes.<command_id>` (subscribed to before publishing). A report whose outcome
//! does not arrive in time is published again with the same command id, so the handler's
//! de-duplication makes the retry harmless.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;
use runledger_bus::BusNames;
use runledger_types::{CommandId, EventId, Outcome, RunId};
use serde_json::{Value, json};

use crate::driver::{PendingReport, ReportError, Reporter};

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
    correlation_id: Option<uuid::Uuid>,
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
            correlation_id: None,
        }
    }

    /// The same reporter, with reports caused by the event `causation_id` (a work item's event).
    pub fn caused_by(&self, causation_id: EventId) -> Self {
        Self {
            causation_id: Some(causation_id),
            ..self.clone()
        }
    }

    /// The same reporter, with reports carrying `correlation_id` (the work item's, so that a run's
    /// reports continue the chain of the command that assigned it).
    pub fn correlated(&self, correlation_id: Option<uuid::Uuid>) -> Self {
        Self {
            correlation_id,
            ..self.clone()
        }
    }

    /// The actor reports are sent as.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Ends `run_id` as `error` with `error_code` and `reason`: for failures before any driver
    /// ran it (an unreachable machine, a token that cannot be opened, a lost predecessor).
    pub async fn report_error_end(
        &self,
        run_id: RunId,
        error_code: &str,
        reason: &str,
    ) -> Result<Outcome, ReporterError> {
        let payload = json!({"run_id": run_id, "status": "error", "reason": reason,
                             "error_code": error_code});
        self.send("report_run_finished", payload).await
    }

    /// Sends one report under a fresh command id and returns its outcome, accepted or not.
    #[tracing::instrument(skip(self, payload), fields(command_id))]
    pub async fn send(&self, command_type: &str, payload: Value) -> Result<Outcome, ReporterError> {
        let (command_id, body) = self.body(command_type, payload)?;
        tracing::Span::current().record("command_id", tracing::field::display(command_id));
        self.deliver(command_id, command_type, &body, None).await
    }

    /// The command id and body of a report.
    fn body(
        &self,
        command_type: &str,
        payload: Value,
    ) -> Result<(CommandId, Vec<u8>), ReporterError> {
        let command_id = CommandId::new();
        let body = json!({
            "command_id": command_id,
            "type": command_type,
            "actor": self.actor,
            "causation_id": self.causation_id,
            "correlation_id": self.correlation_id,
            "payload": payload,
        });
        let body = serde_json::to_vec(&body).map_err(|err| ReporterError::BadOutcome {
            command_id,
            message: err.to_string(),
        })?;
        Ok((command_id, body))
    }

    /// Waits for the outcome of a report, publishing it (again) while none arrives, up to the
    /// attempts allowed. `published` is the subscription of a first publish already made.
    async fn deliver(
        &self,
        command_id: CommandId,
        command_type: &str,
        body: &[u8],
        mut published: Option<async_nats::Subscriber>,
    ) -> Result<Outcome, ReporterError> {
        let mut last_error = None;
        for attempt in 1..=self.attempts {
            let subscription = match published.take() {
                Some(subscription) => Ok(subscription),
                None => self.publish(command_id, command_type, body).await,
            };
            let waited = match subscription {
                Ok(mut outcomes) => self.wait(&mut outcomes, command_id).await,
                Err(err) => Err(err),
            };
            match waited {
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

    /// Subscribes to the report's outcome, then publishes it; returns once JetStream has stored
    /// it. No flush is needed between the two: the subscription goes out first on the same
    /// connection, so the server knows it before the report can be handled.
    async fn publish(
        &self,
        command_id: CommandId,
        command_type: &str,
        body: &[u8],
    ) -> Result<async_nats::Subscriber, ReporterError> {
        let outcomes = self
            .client
            .subscribe(self.names.outcome_subject(command_id))
            .await
            .map_err(|err| nats("subscribe to the outcome", err))?;
        let message = PublishMessage::build()
            .payload(body.to_vec().into())
            .message_id(command_id.to_string());
        self.js
            .send_publish(self.names.command_subject(command_type), message)
            .await
            .map_err(|err| nats("publish the report", err))?
            .await
            .map_err(|err| nats("store the report", err))?;
        Ok(outcomes)
    }

    /// The outcome on `outcomes`; `Ok(None)` when it did not arrive within the timeout.
    async fn wait(
        &self,
        outcomes: &mut async_nats::Subscriber,
        command_id: CommandId,
    ) -> Result<Option<Outcome>, ReporterError> {
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

/// A report's outcome as the driver sees it: accepted, or an error naming the rejection.
fn judged(
    command_type: &'static str,
    outcome: Result<Outcome, ReporterError>,
) -> Result<(), ReportError> {
    let outcome = outcome.map_err(|err| ReportError {
        command_type,
        reason: err.to_string(),
        rejection: None,
    })?;
    match (outcome.accepted, outcome.error) {
        (true, _) => Ok(()),
        (false, error) => Err(ReportError {
            command_type,
            rejection: error.as_ref().map(|e| e.code),
            reason: error.map_or_else(
                || "rejected".to_owned(),
                |e| format!("rejected: {} ({})", e.code.as_str(), e.message),
            ),
        }),
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
        judged(command_type, self.send(command_type, payload).await)
    }

    /// Publishes now (queued on the connection in order with the reports published before it);
    /// JetStream's ack and the outcome are waited for, and the report published again if they do
    /// not come, by the returned future.
    async fn report_in_order(
        &self,
        command_type: &'static str,
        payload: Value,
    ) -> Result<PendingReport, ReportError> {
        let failed = |err: ReporterError| ReportError {
            command_type,
            reason: err.to_string(),
            rejection: None,
        };
        let (command_id, body) = self.body(command_type, payload).map_err(failed)?;
        // Queued on the connection in order; JetStream's ack is awaited with the outcome.
        let outcomes = self
            .client
            .subscribe(self.names.outcome_subject(command_id))
            .await
            .map_err(|err| failed(nats("subscribe to the outcome", err)))?;
        let message = PublishMessage::build()
            .payload(body.clone().into())
            .message_id(command_id.to_string());
        let stored = self
            .js
            .send_publish(self.names.command_subject(command_type), message)
            .await
            .map_err(|err| failed(nats("publish the report", err)))?;
        let reporter = self.clone();
        Ok(Box::pin(async move {
            // Not stored: published again (same command id) by `deliver`; a chunk stored after
            // it is refused as a gap and sent again by the caller.
            let published = match stored.await {
                Ok(_) => Some(outcomes),
                Err(err) => {
                    tracing::warn!(error = %err, "report not stored; publishing it again");
                    None
                }
            };
            let outcome = reporter
                .deliver(command_id, command_type, &body, published)
                .await;
            judged(command_type, outcome)
        }))
    }
}
