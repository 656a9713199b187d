//! The NATS [`Reporter`](crate::driver::Reporter): each report is a command sent by the bus's
//! [`CommandSender`] as the executor's actor, carrying the causation and correlation of the work
//! item it acts on. A report whose outcome does not arrive in time is published again with the
//! same command id, so the handler's de-duplication makes the retry harmless.

use std::time::Duration;

use runledger_bus::{BusNames, CommandSender, Origin, SendError};
use runledger_types::command::{CommandPayload, ReportRunFinished};
use runledger_types::{CommandId, EventId, Outcome, RunId, RunStatus};
use serde_json::Value;

use crate::driver::{PendingReport, ReportError, Reporter};

/// Why a report got no outcome: the bus's [`SendError`].
pub type ReporterError = SendError;

/// Publishes reports as the executor `executor:<name>`; cheap to clone.
#[derive(Debug, Clone)]
pub struct NatsReporter {
    sender: CommandSender,
    origin: Origin,
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
            sender: CommandSender::new(client, names, timeout, attempts),
            origin: Origin::actor(format!("executor:{name}")),
        }
    }

    /// The same reporter, with reports caused by the event `causation_id` (a work item's event).
    pub fn caused_by(&self, causation_id: EventId) -> Self {
        let mut reporter = self.clone();
        reporter.origin.causation_id = Some(causation_id.0);
        reporter
    }

    /// The same reporter, with reports carrying `correlation_id` (the work item's, so that a run's
    /// reports continue the chain of the command that assigned it).
    pub fn correlated(&self, correlation_id: Option<uuid::Uuid>) -> Self {
        let mut reporter = self.clone();
        reporter.origin.correlation_id = correlation_id;
        reporter
    }

    /// The actor reports are sent as.
    pub fn actor(&self) -> &str {
        &self.origin.actor
    }

    /// Ends `run_id` as `error` with `error_code` and `reason`: for failures before any driver
    /// ran it (an unreachable machine, a token that cannot be opened, a lost predecessor).
    pub async fn report_error_end(
        &self,
        run_id: RunId,
        error_code: &str,
        reason: &str,
    ) -> Result<Outcome, ReporterError> {
        let report = ReportRunFinished {
            run_id,
            status: RunStatus::Error,
            exit_code: None,
            summary: None,
            reason: Some(reason.to_owned()),
            error_code: Some(error_code.to_owned()),
            tests: Vec::new(),
        };
        self.send(&report).await
    }

    /// Sends one report under a fresh command id and returns its outcome, accepted or not.
    #[tracing::instrument(skip_all, fields(command_type = C::TYPE.as_str(), command_id))]
    pub async fn send<C: CommandPayload>(&self, report: &C) -> Result<Outcome, ReporterError> {
        let command_id = CommandId::new();
        tracing::Span::current().record("command_id", tracing::field::display(command_id));
        self.sender
            .send_from(command_id, &self.origin, report)
            .await
    }

    /// Sends a report given as its type and JSON (the [`Reporter`] interface).
    #[tracing::instrument(skip(self, payload), fields(command_id))]
    async fn send_json(
        &self,
        command_type: &str,
        payload: Value,
    ) -> Result<Outcome, ReporterError> {
        let command_id = CommandId::new();
        tracing::Span::current().record("command_id", tracing::field::display(command_id));
        self.sender
            .send_raw(command_id, &self.origin, command_type, payload)
            .await
    }
}

/// A report's outcome as the driver sees it: accepted, or an error naming the rejection.
fn judged(
    command_type: &'static str,
    outcome: Result<Outcome, ReporterError>,
) -> Result<(), ReportError> {
    let outcome = outcome.map_err(|err| failed(command_type, &err))?;
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

fn failed(command_type: &'static str, err: &ReporterError) -> ReportError {
    ReportError {
        command_type,
        reason: err.to_string(),
        rejection: None,
    }
}

impl Reporter for NatsReporter {
    async fn report(&self, command_type: &'static str, payload: Value) -> Result<(), ReportError> {
        judged(command_type, self.send_json(command_type, payload).await)
    }

    /// Publishes now (queued on the connection in order with the reports published before it);
    /// JetStream's ack and the outcome are waited for, and the report published again if they do
    /// not come, by the returned future.
    async fn report_in_order(
        &self,
        command_type: &'static str,
        payload: Value,
    ) -> Result<PendingReport, ReportError> {
        let pending = self
            .sender
            .publish_in_order(CommandId::new(), &self.origin, command_type, payload)
            .await
            .map_err(|err| failed(command_type, &err))?;
        // Not stored: published again (same command id) by `outcome`; a chunk stored after it is
        // refused as a gap and sent again by the caller.
        Ok(Box::pin(async move {
            judged(command_type, pending.outcome().await)
        }))
    }
}
