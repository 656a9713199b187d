//! The view's records: what the executor knows of each machine, venv, test case and run, and
//! what a driver gets when it resolves a run or venv. Each is a snapshot of the domain's state
//! (which folds the log once for everyone) with its id, owned, so a driver can keep it while the
//! view moves on.

use runledger_domain::{MachineState, TestCaseState, VenvState};
use runledger_types::command::{SelectedTest, TestFile};
use runledger_types::jenkins::JenkinsJob;
use runledger_types::{
    EnvName, Host, HostKeyFingerprint, Line, MachineId, MachineName, Os, Port, RelativePath,
    RemotePath, RemoteUser, RunId, RunStatus, SealedSecret, TestCaseId, Text, VenvId, VenvName,
};
use std::collections::{BTreeMap, BTreeSet};

/// A machine as the executor needs it. Its `Debug` shows sealed credentials only.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineInfo {
    /// Its id.
    pub machine_id: MachineId,
    /// Its name, for logs.
    pub name: MachineName,
    /// Host name or address; `local` means the local transport.
    pub host: Host,
    /// SSH port.
    pub port: Port,
    /// Decides how commands are rendered.
    pub os: Os,
    /// The remote user.
    pub username: RemoteUser,
    /// Sealed password, if one was given.
    pub password: Option<SealedSecret>,
    /// Sealed private key (OpenSSH PEM), if one was given.
    pub private_key: Option<SealedSecret>,
    /// The pinned host key; `None` until pinned (trust on first use).
    pub host_key: Option<HostKeyFingerprint>,
    /// Retired machines take no new work; runs already assigned there continue.
    pub retired: bool,
}

impl MachineInfo {
    /// The snapshot of the domain's `machine`.
    pub(super) fn new(machine_id: MachineId, machine: &MachineState) -> Self {
        Self {
            machine_id,
            name: machine.name.clone(),
            host: machine.host.clone(),
            port: machine.port,
            os: machine.os,
            username: machine.username.clone(),
            password: machine.password.clone(),
            private_key: machine.private_key.clone(),
            host_key: machine.host_key.clone(),
            retired: machine.retired,
        }
    }
}

/// A venv's lifecycle: the domain's own, folded from the same events.
pub use runledger_domain::VenvStatus;

/// A venv as the executor needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct VenvInfo {
    /// Its id.
    pub venv_id: VenvId,
    /// The machine it lives on.
    pub machine_id: MachineId,
    /// Its name.
    pub name: VenvName,
    /// Its path on the machine.
    pub path: RemotePath,
    /// The interpreter that creates it.
    pub python: Line,
    /// What to pip-install into it.
    pub requirements: Vec<Line>,
    /// Where it is in its lifecycle.
    pub status: VenvStatus,
}

impl VenvInfo {
    /// The snapshot of the domain's `venv`.
    pub(super) fn new(venv_id: VenvId, venv: &VenvState) -> Self {
        Self {
            venv_id,
            machine_id: venv.machine_id,
            name: venv.name.clone(),
            path: venv.path.clone(),
            python: venv.python.clone(),
            requirements: venv.requirements.clone(),
            status: venv.status,
        }
    }
}

/// A test case as the executor needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCaseInfo {
    /// Its id.
    pub test_case_id: TestCaseId,
    /// Its name.
    pub name: MachineName,
    /// The command run inside the venv; absent for a Jenkins job.
    pub command: Option<Text>,
    /// The Jenkins job its runs trigger instead (API token sealed).
    pub jenkins: Option<JenkinsJob<SealedSecret>>,
    /// Files uploaded into the run's working directory.
    pub files: Vec<TestFile>,
    /// Environment for the command (the run's own env is laid over it).
    pub env: BTreeMap<EnvName, String>,
    /// The names a run's env may set; the executor drops any other the log might hold.
    pub env_overridable: BTreeSet<EnvName>,
    /// Past this the run ends `timed_out`.
    pub timeout_s: u32,
    /// The JUnit report to fetch, relative to the working directory.
    pub junit_xml: Option<RelativePath>,
    /// How many times an infrastructure error may be retried.
    pub retries: u32,
    /// Most bytes of output a run records.
    pub max_output_bytes: u64,
}

impl TestCaseInfo {
    /// The snapshot of the domain's `test_case`.
    pub(super) fn new(test_case_id: TestCaseId, test_case: &TestCaseState) -> Self {
        Self {
            test_case_id,
            name: test_case.name.clone(),
            command: test_case.command.clone(),
            jenkins: test_case.jenkins.clone(),
            files: test_case.files.clone(),
            env: test_case.env.clone(),
            env_overridable: test_case.env_overridable.clone(),
            timeout_s: test_case.timeout_s,
            junit_xml: test_case.junit_xml.clone(),
            retries: test_case.retries,
            max_output_bytes: test_case.max_output_bytes,
        }
    }
}

/// The latest assignment of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The leased venv (none for a run of a Jenkins job).
    pub venv_id: Option<VenvId>,
    /// Its machine (none for a run of a Jenkins job).
    pub machine_id: Option<MachineId>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Position of the `run_assigned` event: a work item at another position is stale.
    pub position: i64,
}

/// A run that has not finished yet.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Its test case.
    pub test_case_id: TestCaseId,
    /// The run's own env.
    pub env: BTreeMap<EnvName, String>,
    /// The tests it runs; empty: the whole suite.
    pub tests: Vec<SelectedTest>,
    /// Its latest assignment, if any.
    pub assignment: Option<Assignment>,
    /// The executor that reported `run_started` for the latest attempt.
    pub executor: Option<String>,
    /// Someone asked to cancel the latest attempt.
    pub cancel_requested: bool,
    /// The Jenkins queue item the run follows, once recorded.
    pub jenkins_queue_item: Option<Text>,
    /// The Jenkins build (number, URL) the run follows, once recorded.
    pub jenkins_build: Option<(u64, Text)>,
    /// A sharded group's member of a pytest suite: its place in the split.
    pub shard: Option<ShardSelection>,
}

/// A member's place in its group's split, which its pytest reads at collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSelection {
    /// The member's shard index.
    pub index: u32,
    /// The whole split.
    pub split: std::sync::Arc<runledger_domain::ShardSplit>,
}

/// What an assigned run needs: a venv on a machine, or a Jenkins server.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// A command run inside a venv.
    Venv(Box<ResolvedRun>),
    /// A Jenkins job's build.
    Jenkins(Box<ResolvedJenkinsRun>),
}

impl Resolved {
    /// The run's latest assignment.
    pub fn assignment(&self) -> &Assignment {
        match self {
            Self::Venv(run) => &run.assignment,
            Self::Jenkins(run) => &run.assignment,
        }
    }
}

/// The Jenkins build of a run that ended in error: it may still be running in Jenkins.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedJenkinsRun {
    /// The job (its server and credentials).
    pub job: JenkinsJob<SealedSecret>,
    /// The queue item the run recorded.
    pub queue_item: Option<Text>,
    /// The build the run recorded.
    pub build: Option<(u64, Text)>,
}

/// Everything the Jenkins driver needs; the API token still sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedJenkinsRun {
    /// The run.
    pub run_id: RunId,
    /// Its assignment (attempt, position).
    pub assignment: Assignment,
    /// The job to build.
    pub job: JenkinsJob<SealedSecret>,
    /// The run's env: overrides build parameters of the same name.
    pub run_env: BTreeMap<EnvName, String>,
    /// Past this the build is stopped and the run ends `timed_out`.
    pub timeout_s: u32,
    /// Most bytes of console output recorded.
    pub max_output_bytes: u64,
    /// The queue item an earlier attempt recorded.
    pub queue_item: Option<Text>,
    /// The build an earlier attempt recorded.
    pub build: Option<(u64, Text)>,
}

/// Everything a driver needs to execute a run; credentials still sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRun {
    /// The run.
    pub run_id: RunId,
    /// Its assignment (attempt, venv, machine, position).
    pub assignment: Assignment,
    /// What to run.
    pub test_case: TestCaseInfo,
    /// The run's env, laid over the test case's.
    pub run_env: BTreeMap<EnvName, String>,
    /// The tests it runs; empty: the whole suite.
    pub tests: Vec<SelectedTest>,
    /// Where to run it.
    pub venv: VenvInfo,
    /// The machine to connect to.
    pub machine: MachineInfo,
    /// Cancellation was already requested.
    pub cancel_requested: bool,
    /// A sharded group's member of a pytest suite: its place in the split.
    pub shard: Option<ShardSelection>,
}

/// Everything provisioning needs: the venv and its machine.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedVenv {
    /// The venv to create.
    pub venv: VenvInfo,
    /// The machine to create it on.
    pub machine: MachineInfo,
}

/// Why a run or venv cannot be resolved from the view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// No such run (not yet seen, or never requested).
    #[error("unknown run {0}")]
    UnknownRun(RunId),
    /// The run has ended: there is nothing to do.
    #[error("run {run_id} already finished as {}", status.as_str())]
    RunFinished {
        /// The run.
        run_id: RunId,
        /// How it ended.
        status: RunStatus,
    },
    /// The run holds no venv.
    #[error("run {0} is not assigned")]
    NotAssigned(RunId),
    /// No such test case.
    #[error("unknown test case {0}")]
    UnknownTestCase(TestCaseId),
    /// No such venv, or it was removed.
    #[error("unknown or removed venv {0}")]
    UnknownVenv(VenvId),
    /// No such machine.
    #[error("unknown machine {0}")]
    UnknownMachine(MachineId),
}
