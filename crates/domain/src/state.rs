//! The lab's state folded from the log: what [`crate::decide`] needs to know, and what an
//! executor needs to drive the work it decides on (hosts, sealed credentials, venv paths, test
//! case commands, a run's env). One fold for every reader, so a new event changes one place.
//!
//! Every collection is an `imbl` persistent map, so cloning a [`Lab`] is O(1): the handler
//! clones it before a batch and restores the clone if the transaction fails.

use chrono::{DateTime, Utc};
use imbl::{OrdMap, OrdSet};
use runledger_types::command::{SelectedTest, TestFile};
use runledger_types::jenkins::JenkinsJob;
use runledger_types::{
    Actor, EnvName, Host, HostKeyFingerprint, Label, Line, MachineId, MachineName, Os, Port,
    Reason, RelativePath, RemotePath, RemoteUser, Role, RunId, RunStatus, SealedSecret, StreamId,
    TestCaseId, TestId, Text, Username, VenvId, VenvName,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// `admin` or `member`.
    pub role: Role,
    /// Disabled users may not log in or act; there is no way back (register a new name).
    pub disabled: bool,
}

/// A registered machine. Its `Debug` shows sealed credentials only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineState {
    /// Its name, for logs.
    pub name: MachineName,
    /// Host name or address; `local` means an executor's own host (see [`Self::is_local`]).
    pub host: Host,
    /// SSH port.
    pub port: Port,
    /// The remote user executors log in as.
    pub username: RemoteUser,
    /// Sealed password, if one was given.
    pub password: Option<SealedSecret>,
    /// Sealed private key (OpenSSH PEM), if one was given.
    pub private_key: Option<SealedSecret>,
    /// Who registered it and may manage it.
    pub owner: Actor,
    /// Decides the default venv path and how commands are rendered.
    pub os: Os,
    /// Labels runs may select it by.
    pub labels: BTreeSet<Label>,
    /// The pinned host key, once known.
    pub host_key: Option<HostKeyFingerprint>,
    /// True once retired: no new runs go to it.
    pub retired: bool,
}

impl MachineState {
    /// True for host `local`: its work runs on an executor's own host, so only admins and
    /// trusted systems manage it.
    pub fn is_local(&self) -> bool {
        self.host.is_local()
    }
}

/// Where a venv is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenvStatus {
    /// Added; the executor is creating it.
    Provisioning,
    /// Ready and not leased.
    Free,
    /// Leased by this run alone.
    Leased(RunId),
    /// Provisioning failed.
    Broken,
    /// Removed; never used again.
    Removed,
}

/// A virtualenv on a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenvState {
    /// The machine it lives on.
    pub machine_id: MachineId,
    /// Its name, unique among the machine's venvs that are not removed.
    pub name: VenvName,
    /// Its path on the machine.
    pub path: RemotePath,
    /// The interpreter that creates it.
    pub python: Line,
    /// What to pip-install into it.
    pub requirements: Vec<Line>,
    /// Where it is in its life.
    pub status: VenvStatus,
}

/// A defined test case.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCaseState {
    /// Its name.
    pub name: MachineName,
    /// The command run inside the venv; absent for a Jenkins job.
    pub command: Option<Text>,
    /// The Jenkins job its runs trigger instead of using a venv (API token sealed); the builds
    /// they follow must be on its server's origin.
    pub jenkins: Option<JenkinsJob<SealedSecret>>,
    /// Files uploaded into a run's working directory.
    pub files: Vec<TestFile>,
    /// Environment for the command (a run's own env is laid over it).
    pub env: BTreeMap<EnvName, String>,
    /// The names a run's `env` may set.
    pub env_overridable: BTreeSet<EnvName>,
    /// Past this a run ends `timed_out`.
    pub timeout_s: u32,
    /// The JUnit report to fetch, relative to the working directory.
    pub junit_xml: Option<RelativePath>,
    /// How often an infrastructure error may be retried.
    pub retries: u32,
    /// Most bytes of output a run records.
    pub max_output_bytes: u64,
}

/// The Jenkins build a run follows, as far as the executor has reported it. Kept across the
/// run's attempts: a retry follows the same queue item or build instead of triggering another.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JenkinsProgress {
    /// The queue item the trigger created.
    pub queue_item: Option<Text>,
    /// The build's number and URL, once it started.
    pub build: Option<(u64, Text)>,
}

/// What a run asked for: every given part must hold for a venv to serve it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunSelector {
    /// Only venvs on this machine.
    pub machine_id: Option<MachineId>,
    /// Only machines carrying all of these labels.
    pub labels: BTreeSet<Label>,
    /// Exactly this venv.
    pub venv_id: Option<VenvId>,
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Requested; queued or assigned by the next event of the same command.
    Requested,
    /// Waiting for a free venv.
    Queued,
    /// Holds a venv; waiting for an executor.
    Assigned,
    /// An executor runs it.
    Running,
    /// Ended with this final status.
    Finished(RunStatus),
}

/// A run of a test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    /// What it runs.
    pub test_case_id: TestCaseId,
    /// Who asked for it.
    pub user: Actor,
    /// The run's own env (names its test case lets it set).
    pub env: BTreeMap<EnvName, String>,
    /// Which venvs may serve it.
    pub selector: RunSelector,
    /// Where it is in its life.
    pub phase: RunPhase,
    /// The venv it holds or held, once assigned.
    pub venv_id: Option<VenvId>,
    /// The machine of that venv.
    pub machine_id: Option<MachineId>,
    /// The attempt number of the latest assignment (0 before the first).
    pub attempt: u32,
    /// The executor that started it.
    pub executor: Option<String>,
    /// True once cancellation was requested while running.
    pub cancel_requested: bool,
    /// The highest output `seq` recorded (0 for none).
    pub last_seq: u64,
    /// How many parts of per-test results the current attempt recorded.
    pub tests_parts: u32,
    /// The tests of the failing (`failed` or `error`) results in those parts, one entry per
    /// result: with the final report's own, what quarantine is weighed against.
    pub failing_tests: Vec<TestId>,
    /// The Jenkins build it follows (runs of Jenkins test cases only).
    pub jenkins: Option<JenkinsProgress>,
    /// The finished run it reruns.
    pub rerun_of: Option<RunId>,
    /// The tests it runs; empty: the whole suite.
    pub tests: Vec<SelectedTest>,
    /// Its place in the queue while queued.
    pub(crate) ticket: Option<u64>,
}

/// A test's quarantine: its failures do not make a run `failed` while it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// Why.
    pub reason: Reason,
    /// When it ends by itself; `None`: when released.
    pub until: Option<DateTime<Utc>>,
    /// Who quarantined the test (or last changed its quarantine).
    pub by: Actor,
    /// The test case whose runs report the test, if the sender named it.
    pub test_case_id: Option<TestCaseId>,
}

impl Quarantine {
    /// True while the quarantine holds at `now`: it has no end, or its end is after `now`. A
    /// quarantine whose end has passed no longer holds even before its lapse is recorded.
    pub fn holds_at(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// What the lab keeps of a finished run it forgot: enough to refuse commands about it and to
/// rerun its failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForgottenRun {
    pub(crate) status: RunStatus,
    pub(crate) test_case_id: TestCaseId,
    /// The failing tests of its last attempt, each once (empty for most runs).
    pub(crate) failing: Arc<[TestId]>,
}

/// A test some run reported: its test case and its JUnit names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedTest {
    /// The test case whose runs reported it.
    pub test_case_id: TestCaseId,
    /// Its names.
    pub test: SelectedTest,
}

/// A finished run, forgotten or not, as a rerun sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    /// How it ended.
    pub status: RunStatus,
    /// What it ran.
    pub test_case_id: TestCaseId,
    /// The failing (`failed` or `error`) tests of its last attempt, each once, in report order.
    pub failing: Arc<[TestId]>,
}

/// The whole lab's state folded from the log: users, machines, venvs, test cases, runs, queue,
/// stream versions.
#[derive(Debug, Clone, Default)]
pub struct Lab {
    pub(crate) users: OrdMap<Username, UserState>,
    pub(crate) machines: OrdMap<MachineId, MachineState>,
    pub(crate) venvs: OrdMap<VenvId, VenvState>,
    /// Index of the venvs whose status is `Free`, so scheduling never scans busy venvs.
    pub(crate) free_venvs: OrdSet<VenvId>,
    pub(crate) test_cases: OrdMap<TestCaseId, TestCaseState>,
    pub(crate) runs: OrdMap<RunId, RunState>,
    /// Queued runs by ticket: ascending tickets are the order of their `run_queued` events.
    pub(crate) queue: OrdMap<u64, RunId>,
    pub(crate) next_ticket: u64,
    /// How many queued runs each actor asked for, so the per-actor cap is checked in O(log n).
    pub(crate) queued_by: OrdMap<Actor, u32>,
    /// Index of the runs an executor is running, so the lease watch never scans every run.
    pub(crate) running: OrdSet<RunId>,
    /// Runs that finished and were forgotten ([`Lab::forget_finished_run`]): only their final
    /// status is kept, which is all a decision about them needs.
    pub(crate) forgotten: OrdMap<RunId, ForgottenRun>,
    /// Every test a run reported, by id: what a selection of tests by id resolves to.
    pub(crate) reported_tests: OrdMap<TestId, ReportedTest>,
    /// The quarantined tests (released and lapsed ones are removed).
    pub(crate) quarantines: OrdMap<TestId, Quarantine>,
    pub(crate) versions: OrdMap<StreamId, i64>,
    pub(crate) position: i64,
}

impl Lab {
    /// An empty lab: the state before the first event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Current version of a stream (0 when it has no events yet).
    pub fn stream_version(&self, stream: &StreamId) -> i64 {
        self.versions.get(stream).copied().unwrap_or(0)
    }

    /// Global log position this state includes (set by the caller after folding/committing).
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Records the global log position this state now includes.
    pub fn set_position(&mut self, position: i64) {
        self.position = position;
    }

    /// The user registered under `username`.
    pub fn user(&self, username: &Username) -> Option<&UserState> {
        self.users.get(username)
    }

    /// A machine by id.
    pub fn machine(&self, machine_id: &MachineId) -> Option<&MachineState> {
        self.machines.get(machine_id)
    }

    /// A venv by id.
    pub fn venv(&self, venv_id: &VenvId) -> Option<&VenvState> {
        self.venvs.get(venv_id)
    }

    /// Every venv, by ascending id.
    pub fn venvs(&self) -> impl Iterator<Item = (&VenvId, &VenvState)> {
        self.venvs.iter()
    }

    /// The free venvs, ascending id.
    pub fn free_venvs(&self) -> impl Iterator<Item = (&VenvId, &VenvState)> {
        self.free_venvs
            .iter()
            .filter_map(|id| self.venvs.get(id).map(|venv| (id, venv)))
    }

    /// A test case by id.
    pub fn test_case(&self, test_case_id: &TestCaseId) -> Option<&TestCaseState> {
        self.test_cases.get(test_case_id)
    }

    /// A run by id.
    pub fn run(&self, run_id: &RunId) -> Option<&RunState> {
        self.runs.get(run_id)
    }

    /// The final status of a finished run that [`Lab::forget_finished_run`] dropped.
    pub fn forgotten_run(&self, run_id: &RunId) -> Option<RunStatus> {
        self.forgotten.get(run_id).map(|run| run.status)
    }

    /// A finished run (forgotten or not); `None` for an unknown or unfinished one.
    pub fn finished_run(&self, run_id: &RunId) -> Option<FinishedRun> {
        if let Some(run) = self.forgotten.get(run_id) {
            return Some(FinishedRun {
                status: run.status,
                test_case_id: run.test_case_id,
                failing: run.failing.clone(),
            });
        }
        let run = self.runs.get(run_id)?;
        let RunPhase::Finished(status) = run.phase else {
            return None;
        };
        Some(FinishedRun {
            status,
            test_case_id: run.test_case_id,
            failing: distinct(&run.failing_tests),
        })
    }

    /// A test some run of its test case reported, by id.
    pub fn reported_test(&self, test_id: &TestId) -> Option<&ReportedTest> {
        self.reported_tests.get(test_id)
    }

    /// Drops a finished run's state and its stream's version, keeping only its id, final
    /// status, test case and the ids of its last attempt's failing tests (for a rerun of its
    /// failures): a long-running handler then holds a few dozen bytes per finished run, plus 16
    /// per failing test, instead of its whole state. Nothing is appended to a finished run's
    /// stream again, and every command about it is refused as `run_finished`, for which the
    /// status suffices. Does nothing for a run that has not finished.
    pub fn forget_finished_run(&mut self, run_id: RunId) {
        if !self.runs.contains_key(&run_id) {
            return;
        }
        let Some(forgotten) = self.finished_run(&run_id) else {
            return;
        };
        self.runs.remove(&run_id);
        self.versions.remove(&StreamId::run(run_id));
        let forgotten = ForgottenRun {
            status: forgotten.status,
            test_case_id: forgotten.test_case_id,
            failing: forgotten.failing,
        };
        self.forgotten.insert(run_id, forgotten);
    }

    /// Every run, by ascending id.
    pub fn runs(&self) -> impl Iterator<Item = (&RunId, &RunState)> {
        self.runs.iter()
    }

    /// How many of the queued runs `actor` asked for.
    pub fn queued_by(&self, actor: &Actor) -> u32 {
        self.queued_by.get(actor).copied().unwrap_or(0)
    }

    /// How many runs wait in the queue.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// The runs an executor has started and not yet finished, ascending id.
    pub fn running_runs(&self) -> impl Iterator<Item = (&RunId, &RunState)> {
        self.running
            .iter()
            .filter_map(|id| self.runs.get(id).map(|run| (id, run)))
    }

    /// The quarantine of `test_id`, if it is quarantined (its end may have passed: see
    /// [`Quarantine::holds_at`]).
    pub fn quarantine(&self, test_id: &TestId) -> Option<&Quarantine> {
        self.quarantines.get(test_id)
    }

    /// Every quarantined test, by ascending id.
    pub fn quarantines(&self) -> impl Iterator<Item = (&TestId, &Quarantine)> {
        self.quarantines.iter()
    }

    /// The queued runs, oldest first.
    pub fn queued_runs(&self) -> impl Iterator<Item = RunId> + '_ {
        self.queue.values().copied()
    }
}

/// `tests` without repeats, first occurrence first.
fn distinct(tests: &[TestId]) -> Arc<[TestId]> {
    let mut seen = BTreeSet::new();
    tests
        .iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .collect()
}
