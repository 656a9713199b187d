//! Trust on first use that pins before it trusts: a machine's first-seen host key is reported
//! with `report_host_key`, and only the handler's acceptance (`host_key_pinned`, or the same key
//! pinned already) lets the connection go on to authentication.

use runledger_types::command::ReportHostKey;
use runledger_types::rejection::{Rejection, RejectionCode};
use runledger_types::{HostKeyFingerprint, MachineId};

use super::reporter::{NatsReporter, ReporterError};
use crate::ssh::{ApprovalError, ApproveHostKey};

/// Why a first-seen host key was not pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinRefused {
    /// Another key is pinned for the machine (`host_key_mismatch`).
    #[error("another key is pinned for the machine: {}", .0.message)]
    OtherKeyPinned(Rejection),
    /// The handler refused the report for another reason.
    #[error("report_host_key was rejected ({:?}): {}", .0.code, .0.message)]
    Rejected(Rejection),
    /// The presented key's fingerprint is not one the handler would take.
    #[error("unusable fingerprint: {0}")]
    BadFingerprint(String),
    /// The handler refused the report without saying why.
    #[error("report_host_key was rejected without a reason")]
    Unexplained,
    /// The report got no outcome (NATS or the handler is down, or too slow).
    #[error("report_host_key got no answer")]
    NoAnswer(#[source] ReporterError),
}

/// Pins a machine's first-seen key through the handler, as the executor that connects to it.
#[derive(Debug, Clone)]
pub struct PinThroughHandler {
    reporter: NatsReporter,
    machine_id: MachineId,
}

impl PinThroughHandler {
    /// Pins keys of `machine_id` with `report_host_key` sent by `reporter`.
    pub fn new(reporter: NatsReporter, machine_id: MachineId) -> Self {
        Self {
            reporter,
            machine_id,
        }
    }

    /// Reports `fingerprint` and reads the handler's answer.
    #[tracing::instrument(skip_all, fields(machine_id = %self.machine_id, fingerprint), err)]
    pub async fn pin(&self, fingerprint: &str) -> Result<(), PinRefused> {
        tracing::Span::current().record("fingerprint", fingerprint);
        let fingerprint = HostKeyFingerprint::parse(fingerprint)
            .map_err(|err| PinRefused::BadFingerprint(err.to_string()))?;
        let report = ReportHostKey {
            machine_id: self.machine_id,
            fingerprint,
        };
        let outcome = self
            .reporter
            .send(&report)
            .await
            .map_err(PinRefused::NoAnswer)?;
        if outcome.accepted {
            return Ok(());
        }
        Err(match outcome.error {
            Some(rejection) if rejection.code == RejectionCode::HostKeyMismatch => {
                PinRefused::OtherKeyPinned(rejection)
            }
            Some(rejection) => PinRefused::Rejected(rejection),
            None => PinRefused::Unexplained,
        })
    }
}

impl ApproveHostKey for PinThroughHandler {
    async fn approve(&self, fingerprint: &str) -> Result<(), ApprovalError> {
        self.pin(fingerprint).await.map_err(ApprovalError::from)
    }
}
