//! Events: the facts appended to the log. Their `type` names and `data` shapes are part of the
//! wire contract (§3); changing one means a new `schema_version` and an upcaster.

use crate::command::{Combination, OutputStream, SelectedTest, TestFile, TestResult};
use crate::ids::{
    CommandId, GroupId, MachineId, RunId, StreamId, StreamType, TestCaseId, TestId, VenvId,
};
use crate::jenkins::JenkinsJob;
use crate::rejection::Rejection;
use crate::secret::{PasswordHash, SealedSecret};
use crate::values::{
    Actor, EnvName, GroupStatus, Host, HostKeyFingerprint, Label, Line, MachineName, Os, Port,
    PythonVersion, Reason, RelativePath, RemotePath, RemoteUser, Role, RunStatus, TestSummary,
    Text, Username, VenvName,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The schema version every event is written with today.
pub const CURRENT_SCHEMA_VERSION: i32 = 1;

/// Every event type, with its data. Serialises as `{"type": "...", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Event {
    UserRegistered(UserRegistered),
    MachineRegistered(MachineRegistered),
    MachineUpdated(MachineUpdated),
    HostKeyPinned(HostKeyPinned),
    MachineRetired(MachineRetired),
    VenvAdded(VenvAdded),
    VenvProvisioned(VenvProvisioned),
    VenvProvisioningFailed(VenvProvisioningFailed),
    VenvLeased(VenvLeased),
    VenvReleased(VenvReleased),
    VenvRemoved(VenvRemoved),
    TestCaseDefined(TestCaseDefined),
    RunRequested(RunRequested),
    RunQueued(RunQueued),
    RunAssigned(RunAssigned),
    RunStarted(RunStarted),
    RunOutput(RunOutput),
    RunTestsReported(RunTestsReported),
    RunCancelRequested(RunCancelRequested),
    RunFinished(RunFinished),
    JenkinsBuildQueued(JenkinsBuildQueued),
    JenkinsBuildStarted(JenkinsBuildStarted),
    ExecutorHeartbeat(ExecutorHeartbeat),
    CommandRejected(CommandRejected),
    UserDisabled(UserDisabled),
    PasswordChanged(PasswordChanged),
    TokensRevoked(TokensRevoked),
    TestQuarantined(TestQuarantined),
    TestReleased(TestReleased),
    GroupStarted(GroupStarted),
    GroupTestsPlanned(GroupTestsPlanned),
    GroupCancelRequested(GroupCancelRequested),
    GroupFinished(GroupFinished),
}

impl Event {
    /// The stream the event belongs to.
    pub fn stream_id(&self) -> StreamId {
        use StreamType as S;
        match self {
            Self::UserRegistered(e) => StreamId::new(S::User, &e.username),
            Self::MachineRegistered(e) => StreamId::new(S::Machine, e.machine_id),
            Self::MachineUpdated(e) => StreamId::new(S::Machine, e.machine_id),
            Self::HostKeyPinned(e) => StreamId::new(S::Machine, e.machine_id),
            Self::MachineRetired(e) => StreamId::new(S::Machine, e.machine_id),
            Self::VenvAdded(e) => StreamId::new(S::Venv, e.venv_id),
            Self::VenvProvisioned(e) => StreamId::new(S::Venv, e.venv_id),
            Self::VenvProvisioningFailed(e) => StreamId::new(S::Venv, e.venv_id),
            Self::VenvLeased(e) => StreamId::new(S::Venv, e.venv_id),
            Self::VenvReleased(e) => StreamId::new(S::Venv, e.venv_id),
            Self::VenvRemoved(e) => StreamId::new(S::Venv, e.venv_id),
            Self::TestCaseDefined(e) => StreamId::new(S::TestCase, e.test_case_id),
            Self::RunRequested(e) => StreamId::new(S::Run, e.run_id),
            Self::RunQueued(e) => StreamId::new(S::Run, e.run_id),
            Self::RunAssigned(e) => StreamId::new(S::Run, e.run_id),
            Self::RunStarted(e) => StreamId::new(S::Run, e.run_id),
            Self::RunOutput(e) => StreamId::new(S::Run, e.run_id),
            Self::RunTestsReported(e) => StreamId::new(S::Run, e.run_id),
            Self::RunCancelRequested(e) => StreamId::new(S::Run, e.run_id),
            Self::RunFinished(e) => StreamId::new(S::Run, e.run_id),
            Self::JenkinsBuildQueued(e) => StreamId::new(S::Run, e.run_id),
            Self::JenkinsBuildStarted(e) => StreamId::new(S::Run, e.run_id),
            Self::ExecutorHeartbeat(e) => StreamId::new(S::Executor, &e.executor),
            Self::CommandRejected(e) => StreamId::new(S::Command, e.command_id),
            Self::UserDisabled(e) => StreamId::new(S::User, &e.username),
            Self::PasswordChanged(e) => StreamId::new(S::User, &e.username),
            Self::TokensRevoked(e) => StreamId::new(S::User, &e.username),
            Self::TestQuarantined(e) => StreamId::new(S::Test, e.test_id),
            Self::TestReleased(e) => StreamId::new(S::Test, e.test_id),
            Self::GroupStarted(e) => StreamId::new(S::Group, e.group_id),
            Self::GroupTestsPlanned(e) => StreamId::new(S::Group, e.group_id),
            Self::GroupCancelRequested(e) => StreamId::new(S::Group, e.group_id),
            Self::GroupFinished(e) => StreamId::new(S::Group, e.group_id),
        }
    }

    /// The wire name of the event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::UserRegistered(_) => "user_registered",
            Self::MachineRegistered(_) => "machine_registered",
            Self::MachineUpdated(_) => "machine_updated",
            Self::HostKeyPinned(_) => "host_key_pinned",
            Self::MachineRetired(_) => "machine_retired",
            Self::VenvAdded(_) => "venv_added",
            Self::VenvProvisioned(_) => "venv_provisioned",
            Self::VenvProvisioningFailed(_) => "venv_provisioning_failed",
            Self::VenvLeased(_) => "venv_leased",
            Self::VenvReleased(_) => "venv_released",
            Self::VenvRemoved(_) => "venv_removed",
            Self::TestCaseDefined(_) => "test_case_defined",
            Self::RunRequested(_) => "run_requested",
            Self::RunQueued(_) => "run_queued",
            Self::RunAssigned(_) => "run_assigned",
            Self::RunStarted(_) => "run_started",
            Self::RunOutput(_) => "run_output",
            Self::RunTestsReported(_) => "run_tests_reported",
            Self::RunCancelRequested(_) => "run_cancel_requested",
            Self::RunFinished(_) => "run_finished",
            Self::JenkinsBuildQueued(_) => "jenkins_build_queued",
            Self::JenkinsBuildStarted(_) => "jenkins_build_started",
            Self::ExecutorHeartbeat(_) => "executor_heartbeat",
            Self::CommandRejected(_) => "command_rejected",
            Self::UserDisabled(_) => "user_disabled",
            Self::PasswordChanged(_) => "password_changed",
            Self::TokensRevoked(_) => "tokens_revoked",
            Self::TestQuarantined(_) => "test_quarantined",
            Self::TestReleased(_) => "test_released",
            Self::GroupStarted(_) => "group_started",
            Self::GroupTestsPlanned(_) => "group_tests_planned",
            Self::GroupCancelRequested(_) => "group_cancel_requested",
            Self::GroupFinished(_) => "group_finished",
        }
    }

    /// The event's `data` as JSON text, as stored in the log and published.
    pub fn data_json(&self) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
        match self {
            Self::UserRegistered(data) => serde_json::value::to_raw_value(data),
            Self::MachineRegistered(data) => serde_json::value::to_raw_value(data),
            Self::MachineUpdated(data) => serde_json::value::to_raw_value(data),
            Self::HostKeyPinned(data) => serde_json::value::to_raw_value(data),
            Self::MachineRetired(data) => serde_json::value::to_raw_value(data),
            Self::VenvAdded(data) => serde_json::value::to_raw_value(data),
            Self::VenvProvisioned(data) => serde_json::value::to_raw_value(data),
            Self::VenvProvisioningFailed(data) => serde_json::value::to_raw_value(data),
            Self::VenvLeased(data) => serde_json::value::to_raw_value(data),
            Self::VenvReleased(data) => serde_json::value::to_raw_value(data),
            Self::VenvRemoved(data) => serde_json::value::to_raw_value(data),
            Self::TestCaseDefined(data) => serde_json::value::to_raw_value(data),
            Self::RunRequested(data) => serde_json::value::to_raw_value(data),
            Self::RunQueued(data) => serde_json::value::to_raw_value(data),
            Self::RunAssigned(data) => serde_json::value::to_raw_value(data),
            Self::RunStarted(data) => serde_json::value::to_raw_value(data),
            Self::RunOutput(data) => serde_json::value::to_raw_value(data),
            Self::RunTestsReported(data) => serde_json::value::to_raw_value(data),
            Self::RunCancelRequested(data) => serde_json::value::to_raw_value(data),
            Self::RunFinished(data) => serde_json::value::to_raw_value(data),
            Self::JenkinsBuildQueued(data) => serde_json::value::to_raw_value(data),
            Self::JenkinsBuildStarted(data) => serde_json::value::to_raw_value(data),
            Self::ExecutorHeartbeat(data) => serde_json::value::to_raw_value(data),
            Self::CommandRejected(data) => serde_json::value::to_raw_value(data),
            Self::UserDisabled(data) => serde_json::value::to_raw_value(data),
            Self::PasswordChanged(data) => serde_json::value::to_raw_value(data),
            Self::TokensRevoked(data) => serde_json::value::to_raw_value(data),
            Self::TestQuarantined(data) => serde_json::value::to_raw_value(data),
            Self::TestReleased(data) => serde_json::value::to_raw_value(data),
            Self::GroupStarted(data) => serde_json::value::to_raw_value(data),
            Self::GroupTestsPlanned(data) => serde_json::value::to_raw_value(data),
            Self::GroupCancelRequested(data) => serde_json::value::to_raw_value(data),
            Self::GroupFinished(data) => serde_json::value::to_raw_value(data),
        }
    }

    /// Rebuilds an event from its stored type name and `data` as JSON text, without building a
    /// [`serde_json::Value`] first.
    pub fn from_raw_parts(event_type: &str, data: &str) -> Result<Self, serde_json::Error> {
        macro_rules! decode {
            ($($name:literal => $variant:ident),* $(,)?) => {
                match event_type {
                    $($name => serde_json::from_str(data).map(Self::$variant),)*
                    other => Err(serde::de::Error::unknown_variant(other, &[$($name),*])),
                }
            };
        }
        decode! {
            "user_registered" => UserRegistered,
            "machine_registered" => MachineRegistered,
            "machine_updated" => MachineUpdated,
            "host_key_pinned" => HostKeyPinned,
            "machine_retired" => MachineRetired,
            "venv_added" => VenvAdded,
            "venv_provisioned" => VenvProvisioned,
            "venv_provisioning_failed" => VenvProvisioningFailed,
            "venv_leased" => VenvLeased,
            "venv_released" => VenvReleased,
            "venv_removed" => VenvRemoved,
            "test_case_defined" => TestCaseDefined,
            "run_requested" => RunRequested,
            "run_queued" => RunQueued,
            "run_assigned" => RunAssigned,
            "run_started" => RunStarted,
            "run_output" => RunOutput,
            "run_tests_reported" => RunTestsReported,
            "run_cancel_requested" => RunCancelRequested,
            "run_finished" => RunFinished,
            "jenkins_build_queued" => JenkinsBuildQueued,
            "jenkins_build_started" => JenkinsBuildStarted,
            "executor_heartbeat" => ExecutorHeartbeat,
            "command_rejected" => CommandRejected,
            "user_disabled" => UserDisabled,
            "password_changed" => PasswordChanged,
            "tokens_revoked" => TokensRevoked,
            "test_quarantined" => TestQuarantined,
            "test_released" => TestReleased,
            "group_started" => GroupStarted,
            "group_tests_planned" => GroupTestsPlanned,
            "group_cancel_requested" => GroupCancelRequested,
            "group_finished" => GroupFinished,
        }
    }

    /// Rebuilds an event from its stored type name and `data`.
    pub fn from_parts(
        event_type: &str,
        data: serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
    }
}

/// `user_registered`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct UserRegistered {
    pub username: Username,
    pub role: Role,
    /// argon2 PHC string; never the password.
    pub password_hash: PasswordHash,
}

/// The event types after which a user's earlier tokens no longer work.
pub const TOKEN_REVOKING_EVENTS: &[&str] = &["user_disabled", "password_changed", "tokens_revoked"];

/// `user_disabled`: the user may not log in, and none of their tokens works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct UserDisabled {
    pub username: Username,
}

/// `password_changed`: the new argon2 hash; tokens issued before it no longer work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct PasswordChanged {
    pub username: Username,
    /// argon2 PHC string; never the password.
    pub password_hash: PasswordHash,
}

/// `tokens_revoked`: every token of the user issued before it no longer works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TokensRevoked {
    pub username: Username,
}

/// `machine_registered`: credentials are sealed, never in clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MachineRegistered {
    pub machine_id: MachineId,
    pub name: MachineName,
    pub host: Host,
    pub port: Port,
    pub os: Os,
    pub username: RemoteUser,
    /// Who registered it and may manage it.
    pub owner: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SealedSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SealedSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<HostKeyFingerprint>,
    pub labels: BTreeSet<Label>,
}

/// `machine_updated`: only the fields that changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MachineUpdated {
    pub machine_id: MachineId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<MachineName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Os>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<RemoteUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SealedSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SealedSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<HostKeyFingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeSet<Label>>,
}

/// `host_key_pinned`: the key seen on first contact is trusted from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct HostKeyPinned {
    pub machine_id: MachineId,
    pub fingerprint: HostKeyFingerprint,
}

/// `machine_retired`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MachineRetired {
    pub machine_id: MachineId,
}

/// `venv_added`: the venv is now `provisioning`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VenvAdded {
    pub venv_id: VenvId,
    pub machine_id: MachineId,
    pub name: VenvName,
    /// Resolved path on the machine.
    pub path: RemotePath,
    pub python: Line,
    pub requirements: Vec<Line>,
}

/// `venv_provisioned`: the venv is now `free`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VenvProvisioned {
    pub venv_id: VenvId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
}

/// `venv_provisioning_failed`: the venv is now `broken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VenvProvisioningFailed {
    pub venv_id: VenvId,
    pub reason: String,
    pub output_tail: String,
}

/// `venv_leased`: the venv now belongs to `run_id` alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VenvLeased {
    pub venv_id: VenvId,
    pub run_id: RunId,
}

/// `venv_released`: the run gave the venv back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VenvReleased {
    pub venv_id: VenvId,
    pub run_id: RunId,
}

/// `venv_removed`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VenvRemoved {
    pub venv_id: VenvId,
}

/// `test_case_defined`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TestCaseDefined {
    pub test_case_id: TestCaseId,
    pub name: MachineName,
    pub description: String,
    /// The command run inside the venv; absent for a Jenkins job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Text>,
    /// The Jenkins job its runs trigger instead (API token sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkins: Option<JenkinsJob<SealedSecret>>,
    pub files: Vec<TestFile>,
    pub env: BTreeMap<EnvName, String>,
    /// The names a run's `env` may set; absent in events recorded before runs were limited.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub env_overridable: BTreeSet<EnvName>,
    pub timeout_s: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit_xml: Option<RelativePath>,
    pub retries: u32,
    /// Most bytes of output a run records (the default for events recorded before the limit).
    #[serde(default = "crate::command::default_max_output_bytes")]
    pub max_output_bytes: u64,
}

/// `run_requested`: someone asked for a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunRequested {
    pub run_id: RunId,
    pub test_case_id: TestCaseId,
    /// Who asked (the command's actor).
    pub user: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<MachineId>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub labels: BTreeSet<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venv_id: Option<VenvId>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<EnvName, String>,
    /// The finished run this one reruns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<RunId>,
    /// The tests it runs, resolved at the decision; empty: the whole suite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<SelectedTest>,
    /// Only venvs whose interpreter has this Python version (a matrix member's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonVersion>,
    /// The group it is a member of, with its place there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupMembership>,
}

/// A member run's place in its group, as `run_requested` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupMembership {
    /// The group.
    pub group_id: GroupId,
    /// Its index among the group's members, from 0 (a shard's, or a matrix combination's).
    pub shard: u32,
    /// A matrix member's combination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combination: Option<Combination>,
}

/// `run_queued`: no usable venv is free; `reason` says why (`no_free_venv`, `no_matching_machine`,
/// `machine_retired`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunQueued {
    pub run_id: RunId,
    pub reason: String,
}

/// `run_assigned`: the run holds a venv and waits for an executor. A run of a Jenkins job needs
/// neither venv nor machine: its `run_assigned` names none and any executor may take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunAssigned {
    pub run_id: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venv_id: Option<VenvId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<MachineId>,
    /// 1 for the first attempt; retries count up.
    pub attempt: u32,
}

/// `run_started`: an executor started the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunStarted {
    pub run_id: RunId,
    pub executor: String,
}

/// `run_output`: a chunk of output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunOutput {
    pub run_id: RunId,
    pub seq: u64,
    pub stream: OutputStream,
    pub text: String,
}

/// `run_tests_reported`: one part of the run's per-test results, for reports too large for one
/// message; the attempt's results are its parts in order, then `run_finished`'s own `tests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunTestsReported {
    pub run_id: RunId,
    pub part: u32,
    pub tests: Vec<TestResult>,
}

/// `run_cancel_requested`: the executor should stop the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunCancelRequested {
    pub run_id: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `run_finished`: the run ended with a final status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RunFinished {
    pub run_id: RunId,
    pub status: RunStatus,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub summary: Option<TestSummary>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResult>,
}

/// `jenkins_build_queued`: the run's Jenkins build was triggered and waits in Jenkins' queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct JenkinsBuildQueued {
    pub run_id: RunId,
    /// The queue item's URL.
    pub queue_item: Text,
}

/// `jenkins_build_started`: the run's Jenkins build has a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct JenkinsBuildStarted {
    pub run_id: RunId,
    pub number: u64,
    pub url: Text,
}

/// `executor_heartbeat`: the executor is alive and holds `run_ids`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ExecutorHeartbeat {
    pub executor: String,
    pub run_ids: Vec<RunId>,
}

/// `test_quarantined`: the test's failures no longer make a run `failed`, until it is released
/// or `until` passes. A test already quarantined gets its reason, end and author replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TestQuarantined {
    pub test_id: TestId,
    /// The test case whose runs report it, when the sender named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_id: Option<TestCaseId>,
    pub reason: Reason,
    /// When the quarantine ends by itself; absent: until released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Who quarantined it (the command's actor).
    pub by: Actor,
}

/// `test_released`: the test's quarantine ended; its failures count again. `lapsed`: it ended by
/// itself, its `until` having passed (the quarantine watch's `lapse_quarantine`), rather than by
/// a `release_test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TestReleased {
    pub test_id: TestId,
    #[serde(default)]
    pub lapsed: bool,
}

/// How a group runs its test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// The suite's tests split across the members by past durations.
    Shards,
    /// The whole suite once per combination of a matrix.
    Matrix,
}

/// One member as `group_started` records it: which run, which tests, and the time they were
/// predicted to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupMemberPlan {
    /// Its index among the members, from 0.
    pub shard: u32,
    /// The member run.
    pub run_id: RunId,
    /// A shard's tests, in `group_started` events recorded before `group_tests_planned`
    /// existed; since, always empty here: they follow in `group_tests_planned` parts. (Empty
    /// for a matrix member: the whole suite.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<SelectedTest>,
    /// The sum of its tests' expected durations (shards only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_ms: Option<u64>,
    /// A matrix member's combination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combination: Option<Combination>,
}

/// `group_started`: a group and its plan: its members, and for shards the split, decided from
/// the tests' past durations at this moment (so the log answers why a shard took longer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct GroupStarted {
    pub group_id: GroupId,
    pub test_case_id: TestCaseId,
    /// Who asked.
    pub user: Actor,
    pub kind: GroupKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<MachineId>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub labels: BTreeSet<Label>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<EnvName, String>,
    pub members: Vec<GroupMemberPlan>,
    /// Shards: the tests the split had no duration for, each expected to take the median.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown_tests: u32,
    /// Shards: the ideal makespan of the known durations, `max(total / shards, longest)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ideal_ms: Option<u64>,
    /// Shards of a pytest suite: what a test no shard was given (one added since the suite's
    /// latest whole run) is expected to take. Each shard's pytest places such tests itself, at
    /// collection, with the same rule (docs/groups.md); absent for other commands, whose shards
    /// run exactly their tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_ms: Option<u64>,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

/// `group_tests_planned`: a part of one member's tests in a sharded group's split, recorded
/// right after `group_started` in the same decision. The split of a large suite does not fit
/// one event, so each member's tests are recorded in parts of at most
/// [`MAX_PLANNED_TESTS_BYTES`] (as JSON); a member's tests are its parts' tests, in order.
/// (`group_started` events recorded before this event existed hold the tests themselves.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct GroupTestsPlanned {
    pub group_id: GroupId,
    pub shard: u32,
    pub tests: Vec<SelectedTest>,
}

/// The most a `group_tests_planned` event's tests take as JSON: a quarter of NATS's default
/// message size, so the part fits one message of the event stream with room to spare.
pub const MAX_PLANNED_TESTS_BYTES: usize = 256 * 1024;

/// `group_cancel_requested`: `cancel_group` was decided; the members' cancellations follow in
/// the same decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct GroupCancelRequested {
    pub group_id: GroupId,
    pub by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `group_finished`: the last member ended; the group's one answer and its merged summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct GroupFinished {
    pub group_id: GroupId,
    pub status: GroupStatus,
    /// The members' summaries added up (members without a report add nothing).
    pub summary: TestSummary,
}

/// `command_rejected`: who asked what, and why it was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CommandRejected {
    pub command_id: CommandId,
    /// The type as sent (may be unknown or missing: then `""`).
    #[serde(rename = "type")]
    pub command_type: String,
    pub error: Rejection,
}

/// How many bytes `value` takes as JSON, counted without keeping them; `usize::MAX` for a value
/// that does not serialise. For an event (`{"type": …, "data": …}`, a little more than its
/// `data` alone) it decides whether the event fits in one message of the event stream.
pub fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// Counts the bytes written to it, and keeps none.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rejection::RejectionCode;

    #[test]
    fn events_round_trip_through_their_stored_parts() {
        let event = Event::CommandRejected(CommandRejected {
            command_id: CommandId::new(),
            command_type: "start_run".into(),
            error: Rejection::new(RejectionCode::UnknownTestCase, "nope"),
        });
        let kind = event.event_type();
        let data: serde_json::Value =
            serde_json::from_str(event.data_json().expect("serialises").get()).expect("json");
        assert_eq!(kind, "command_rejected");
        assert_eq!(data["type"], "start_run");
        assert_eq!(data["error"]["code"], "unknown_test_case");
        assert_eq!(
            Event::from_parts(kind, data).expect("parses"),
            event.clone()
        );
        let raw = event.data_json().expect("serialises");
        assert_eq!(
            Event::from_raw_parts(kind, raw.get()).expect("parses"),
            event
        );
        assert!(Event::from_raw_parts("no_such_event", "{}").is_err());
        let whole = serde_json::to_vec(&event).expect("serialises").len();
        assert_eq!(json_len(&event), whole);
        assert!(json_len(&event) > raw.get().len());
        assert!(event.stream_id().as_str().starts_with("command-"));
    }
}
