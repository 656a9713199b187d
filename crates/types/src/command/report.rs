//! Reports executors send back: they are commands too, checked against the state of the run or
//! venv they name, with actor `executor:<name>`.

use super::InvalidPayload;
use crate::ids::{MachineId, RunId, VenvId};
use crate::values::{HostKeyFingerprint, RunStatus, TestSummary, Text};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `report_run_started`: the executor has started the run's process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRunStarted {
    /// The run.
    pub run_id: RunId,
}

/// `report_jenkins_queued`: the executor triggered the run's Jenkins build; Jenkins queued it
/// as `queue_item` (the `Location` of the trigger's answer). Recorded before the build starts,
/// so a retried trigger follows this item instead of starting a second build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportJenkinsQueued {
    /// The run.
    pub run_id: RunId,
    /// The queue item's URL, e.g. `https://jenkins/queue/item/42/`.
    pub queue_item: Text,
}

/// `report_jenkins_build`: the run's Jenkins build started, with its number and URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportJenkinsBuild {
    /// The run.
    pub run_id: RunId,
    /// The build number.
    pub number: u64,
    /// The build's URL, e.g. `https://jenkins/job/nightly/17/`.
    pub url: Text,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The `seq` before the first output chunk of attempt `attempt` of a run: attempt 1 numbers its
/// chunks from 1, attempt `n` from `(n - 1) * 2^32 + 1`, so a retried run's output keeps
/// increasing across its attempts.
pub fn first_seq_of_attempt(attempt: u32) -> u64 {
    u64::from(attempt.saturating_sub(1)) << 32
}

/// `report_run_output`: one chunk of output, numbered by `seq`: each attempt's chunks are
/// consecutive from [`first_seq_of_attempt`] + 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRunOutput {
    /// The run.
    pub run_id: RunId,
    /// Chunk number; a chunk whose `seq` was already recorded changes nothing.
    pub seq: u64,
    /// stdout or stderr.
    pub stream: OutputStream,
    /// The text (NUL characters become U+FFFD: Postgres's jsonb cannot hold them).
    pub text: String,
}

impl ReportRunOutput {
    pub(super) fn checked(mut self) -> Self {
        if self.text.contains('\0') {
            self.text = self.text.replace('\0', "\u{FFFD}");
        }
        self
    }
}

/// `report_run_tests`: one part of a run's per-test results, sent before `report_run_finished`
/// when all of them would not fit in one NATS message. Parts are numbered from 1 per attempt;
/// a part already recorded changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRunTests {
    /// The run.
    pub run_id: RunId,
    /// The part's number, from 1.
    pub part: u32,
    /// Its results.
    pub tests: Vec<TestResult>,
}

/// One test's result from a JUnit report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestResult {
    /// Test name.
    pub name: String,
    /// Class or module.
    #[serde(default)]
    pub classname: String,
    /// `passed`, `failed`, `skipped` or `error`.
    pub status: TestOutcome,
    /// Duration in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Failure or error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// Passed.
    Passed,
    /// An assertion failed.
    Failed,
    /// Skipped.
    Skipped,
    /// An unexpected error.
    Error,
}

/// `report_run_finished`: the run ended with a final status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRunFinished {
    /// The run.
    pub run_id: RunId,
    /// A final status.
    pub status: RunStatus,
    /// The process's exit code, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// JUnit counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<TestSummary>,
    /// Human-readable reason for a non-passing status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Machine-readable cause of an `error` (e.g. `ssh_connect`, `auth_failed`, `executor_lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Per-test results.
    #[serde(default)]
    pub tests: Vec<TestResult>,
}

impl ReportRunFinished {
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        if !self.status.is_final() {
            return Err(InvalidPayload(format!(
                "payload.status: {} is not a final status",
                self.status.as_str()
            )));
        }
        Ok(self)
    }
}

/// `report_venv_provisioned`: the venv exists and its requirements are installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportVenvProvisioned {
    /// The venv.
    pub venv_id: VenvId,
    /// `python --version` inside the venv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
}

/// `report_venv_provisioning_failed`: the venv could not be created; it becomes `broken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportVenvProvisioningFailed {
    /// The venv.
    pub venv_id: VenvId,
    /// Why.
    pub reason: String,
    /// The last lines of the provisioning output.
    #[serde(default)]
    pub output_tail: String,
}

/// `report_host_key`: the key a machine presented on first contact, to pin (trust on first use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportHostKey {
    /// The machine.
    pub machine_id: MachineId,
    /// `SHA256:...`
    pub fingerprint: HostKeyFingerprint,
}

/// `expire_executor_lease`: the executor has written no liveness beat for its lease, so the
/// runs it holds end as `error` (`executor_lost`) or are retried. Sent by the handler's lease
/// watch (or an operator). Beats live outside the log (a NATS key-value bucket), so
/// `heartbeats` only names what the sender saw: the revision of the executor's last beat, which
/// with the executor's name makes the command id every watching handler agrees on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpireExecutorLease {
    /// The executor's name (its actor is `executor:<name>`).
    pub executor: String,
    /// The revision of the executor's last beat when the lease was judged expired (0: none).
    pub heartbeats: i64,
}
