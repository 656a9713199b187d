//! Driving one run or one venv provisioning on a machine whose details are already resolved:
//! the step between the service (which takes work from JetStream and owns the claim) and the
//! building blocks ([`render`](crate::render), [`chunker`](crate::chunker),
//! [`junit`](crate::junit), [`classify`](crate::classify), [`ssh`](crate::ssh),
//! [`local`](crate::local)).
//!
//! - [`Transport`] puts an SSH connection and the local machine behind one `exec` / `upload` /
//!   `download` interface with one error type ([`TransportError`], whose
//!   [`kind`](TransportError::kind) maps to an `error_code`).
//! - [`drive_run`] runs a [`RunJob`] and reports `report_run_output` chunks and
//!   `report_run_finished` through a [`Reporter`]. **The caller sends `report_run_started`
//!   before calling it** (that report is the claim: if it is refused, the run is not this
//!   executor's and must not be driven), and connects the transport (an unreachable machine or
//!   refused credentials end the run as `error` before `drive_run` is reached: the caller reports
//!   that with [`TransportErrorKind::error_code`]).
//! - [`drive_jenkins`] runs a [`JenkinsRunJob`]: triggers (or finds) the Jenkins build,
//!   streams its console and reports how it ended.
//! - [`drive_provisioning`] runs a venv's provisioning script and reports
//!   `report_venv_provisioned` or `report_venv_provisioning_failed`.
//!
//! Reports are awaited one by one, so their order is the order they were produced in. A failed
//! `report_run_output` is logged and the run goes on (that chunk is lost); a failed final report
//! is returned as [`NotReported`], holding the outcome so that the caller can send it again.

mod jenkins;
mod output;
mod provision;
mod run;
mod test_parts;
mod transport;
mod watchdog;
pub use test_parts::MAX_TESTS_PART_BYTES;
mod workdir;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use runledger_types::command::{CommandPayload, SelectedTest};
use runledger_types::ids::RunId;
use runledger_types::values::{EnvName, Os};

pub use jenkins::{JenkinsEnd, JenkinsRunJob, build_parameters, drive_jenkins};
pub use provision::{MAX_OUTPUT_TAIL, ProvisionOutcome, drive_provisioning};
pub use run::drive_run;
pub use transport::{Transport, TransportError, TransportErrorKind};

/// How long a run's process group has between `TERM` and `KILL` after a timeout or cancel.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Sends executor reports (commands) to the service. The service implements it over NATS; a
/// test can push into a `Mutex<Vec<_>>`. Implementations may write `async fn report`; the
/// drivers send typed payloads through [`Reporter::send_report`] and
/// [`Reporter::send_report_in_order`], which name the command type after the payload's type.
pub trait Reporter: Sync {
    /// Sends one report: `command_type` is e.g. `report_run_output`, `payload` its JSON payload
    /// (field names as in `docs/commands.md`). Retrying is the implementation's business; an
    /// error means the report is given up on.
    fn report(
        &self,
        command_type: &'static str,
        payload: serde_json::Value,
    ) -> impl Future<Output = Result<(), ReportError>> + Send;

    /// Sends one report of an ordered series (a run's output) without waiting for its outcome:
    /// resolves once the report is queued behind the ones sent before it, into a future of its
    /// outcome. The default waits for the outcome first (no pipelining).
    fn report_in_order(
        &self,
        command_type: &'static str,
        payload: serde_json::Value,
    ) -> impl Future<Output = Result<PendingReport, ReportError>> + Send {
        async move {
            let outcome = self.report(command_type, payload).await;
            let pending: PendingReport = Box::pin(std::future::ready(outcome));
            Ok(pending)
        }
    }

    /// Sends `report`, as [`Reporter::report`] with its type and JSON.
    fn send_report<C: CommandPayload>(
        &self,
        report: &C,
    ) -> impl Future<Output = Result<(), ReportError>> + Send {
        let payload = report_payload(report);
        async move { self.report(C::TYPE.as_str(), payload?).await }
    }

    /// Sends `report` as one of an ordered series, as [`Reporter::report_in_order`].
    fn send_report_in_order<C: CommandPayload>(
        &self,
        report: &C,
    ) -> impl Future<Output = Result<PendingReport, ReportError>> + Send {
        let payload = report_payload(report);
        async move { self.report_in_order(C::TYPE.as_str(), payload?).await }
    }
}

/// `report` as the JSON [`Reporter::report`] takes.
fn report_payload<C: CommandPayload>(report: &C) -> Result<serde_json::Value, ReportError> {
    serde_json::to_value(report).map_err(|err| ReportError {
        command_type: C::TYPE.as_str(),
        reason: format!("the report could not be encoded: {err}"),
        rejection: None,
    })
}

/// The outcome of a report sent with [`Reporter::report_in_order`], still to come.
pub type PendingReport =
    std::pin::Pin<Box<dyn Future<Output = Result<(), ReportError>> + Send + 'static>>;

/// A report could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("{command_type} could not be reported: {reason}")]
pub struct ReportError {
    /// The report's command type.
    pub command_type: &'static str,
    /// Why (the NATS error, a rejection, …).
    pub reason: String,
    /// The rejection's code, when the handler refused the report.
    pub rejection: Option<runledger_types::RejectionCode>,
}

/// The final report of a run or provisioning could not be sent; the work itself is done (and its
/// working directory cleaned up). `outcome` is what should have been reported.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct NotReported<T: std::fmt::Debug> {
    /// What happened, to report again.
    pub outcome: T,
    /// The delivery failure.
    #[source]
    pub source: ReportError,
}

/// Everything needed to execute one run on a connected machine.
#[derive(Debug, Clone)]
pub struct RunJob {
    /// The run; names its working directory `~/.runledger/runs/<run_id>`.
    pub run_id: RunId,
    /// The machine's OS: decides how scripts are rendered.
    pub os: Os,
    /// Path of the leased venv on the machine.
    pub venv_path: String,
    /// The test case's command line, in the machine's shell language.
    pub command: String,
    /// The test case's environment.
    pub test_case_env: BTreeMap<EnvName, String>,
    /// The run's environment; overrides the test case's.
    pub run_env: BTreeMap<EnvName, String>,
    /// The tests the run selects; empty: the whole suite.
    pub tests: Vec<SelectedTest>,
    /// The test case's files: paths relative to the working directory (`/`-separated, without
    /// `..`), and contents.
    pub files: Vec<(String, Vec<u8>)>,
    /// How long the command may run before its process group is killed (`timed_out`).
    pub timeout: Duration,
    /// The JUnit XML report the command writes, relative to the working directory.
    pub junit_xml: Option<String>,
    /// Most bytes of output recorded; the rest is dropped with a note (the run goes on).
    pub max_output_bytes: u64,
    /// The output `seq` this attempt numbers its chunks after
    /// ([`first_seq_of_attempt`](crate::chunker::first_seq_of_attempt)); 0 for a first attempt.
    pub after_seq: u64,
    /// A sharded group's member of a pytest suite: its place in the split.
    pub shard: Option<crate::view::ShardSelection>,
}
