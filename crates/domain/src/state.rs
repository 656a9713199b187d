//! The lab's state folded from the log: what [`crate::decide`] needs to know, and what an
//! executor needs to drive the work it decides on (hosts, sealed credentials, venv paths, test
//! case commands, a run's env). One fold for every reader, so a new event changes one place.
//!
//! Every collection is an `imbl` persistent map, so cloning a [`Lab`] is O(1): the handler
//! clones it before a batch and restores the clone if the transaction fails.

use chrono::{DateTime, Utc};
use imbl::{OrdMap, OrdSet};
use runledger_types::command::{SelectedTest, TestFile};
use runledger_types::event::{GroupKind, GroupMembership};
use runledger_types::jenkins::JenkinsJob;
use runledger_types::{
    Actor, EnvName, GroupId, GroupStatus, Host, HostKeyFingerprint, Label, Line, MachineId,
    MachineName, Os, Port, PythonVersion, Reason, RelativePath, RemotePath, RemoteUser, Role,
    RunId, RunStatus, SealedSecret, StreamId, TestCaseId, TestId, TestSummary, Text, Username,
    VenvId, VenvName,
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
    /// The version its interpreter reported when it was provisioned (`3.11.7`).
    pub python_version: Option<String>,
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
    /// Only venvs whose interpreter has this Python version.
    pub python: Option<PythonVersion>,
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
    /// The group it is a member of, with its place there.
    pub group: Option<GroupMembership>,
    /// The tests its current attempt reported, one entry per result: what a whole-suite run
    /// tells of the suite ([`Lab::suite`]).
    pub(crate) reported: Vec<TestId>,
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

/// A test some run reported: its test case, its JUnit names, and its latest durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedTest {
    /// The test case whose runs reported it.
    pub test_case_id: TestCaseId,
    /// Its names.
    pub test: SelectedTest,
    /// Its latest durations: what a sharded group splits the suite by.
    pub durations: RecentDurations,
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
    /// Each test case's suite: the tests its latest whole-suite execution reported (a run of
    /// every test that passed or failed, or a sharded group that did).
    pub(crate) suites: OrdMap<TestCaseId, Arc<[TestId]>>,
    /// Run groups that have not finished, and the ids of those that did.
    pub(crate) groups: OrdMap<GroupId, GroupState>,
    pub(crate) finished_groups: OrdMap<GroupId, GroupStatus>,
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

    /// The tests of `test_case_id`'s suite, as its latest whole-suite execution reported
    /// them; `None` before one did.
    pub fn suite(&self, test_case_id: &TestCaseId) -> Option<&Arc<[TestId]>> {
        self.suites.get(test_case_id)
    }

    /// A group that has not finished.
    pub fn group(&self, group_id: &GroupId) -> Option<&GroupState> {
        self.groups.get(group_id)
    }

    /// How a finished group ended; `None` for an unknown or unfinished one.
    pub fn finished_group(&self, group_id: &GroupId) -> Option<GroupStatus> {
        self.finished_groups.get(group_id).copied()
    }

    /// The queued runs, oldest first.
    pub fn queued_runs(&self) -> impl Iterator<Item = RunId> + '_ {
        self.queue.values().copied()
    }
}

/// A run group that has not finished: its members and what they ended as so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// What its members run.
    pub test_case_id: TestCaseId,
    /// Who asked for it.
    pub user: Actor,
    /// Shards or matrix.
    pub kind: GroupKind,
    /// Its member runs, by shard index.
    pub members: Vec<RunId>,
    /// How each member ended, by shard index (`None`: not yet).
    pub ended: Vec<Option<RunStatus>>,
    /// The members' summaries added up so far.
    pub summary: TestSummary,
    /// True once `cancel_group` was decided.
    pub cancel_requested: bool,
    /// Shards of a pytest suite: the split, which each shard's pytest reads to keep its own
    /// tests and to place tests no shard was given.
    pub split: Option<Arc<ShardSplit>>,
    /// Shards: the tests the members reported, which become the suite if the group ends with a
    /// verdict on every test (`passed` or `failed`).
    pub(crate) reported: Vec<TestId>,
}

/// A sharded group's split as `group_started` recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSplit {
    /// Each shard's tests, by shard index.
    pub tests: Vec<Vec<SelectedTest>>,
    /// Each shard's predicted time, by shard index.
    pub predicted_ms: Vec<u64>,
    /// What a test no shard was given is expected to take.
    pub unknown_ms: u64,
}

/// How many durations of a test the lab keeps: their median is what a split expects it to take.
pub const RECENT_DURATIONS: usize = 9;

/// A test's latest durations, newest last, at most [`RECENT_DURATIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecentDurations {
    ms: [u32; RECENT_DURATIONS],
    len: u8,
    next: u8,
}

impl RecentDurations {
    /// Records one more duration, forgetting the oldest when full.
    pub fn push(&mut self, duration_ms: u64) {
        let slot = usize::from(self.next) % RECENT_DURATIONS;
        self.ms[slot] = u32::try_from(duration_ms).unwrap_or(u32::MAX);
        self.next = ((slot + 1) % RECENT_DURATIONS) as u8;
        self.len = (usize::from(self.len) + 1).min(RECENT_DURATIONS) as u8;
    }

    /// The median of the kept durations (the lower of the middle two when even); `None` when
    /// none is kept.
    pub fn p50_ms(&self) -> Option<u64> {
        let len = usize::from(self.len);
        if len == 0 {
            return None;
        }
        let mut kept = self.ms;
        let kept = &mut kept[..len];
        kept.sort_unstable();
        Some(u64::from(kept[(len - 1) / 2]))
    }
}

/// `tests` without repeats, first occurrence first.
pub(crate) fn distinct(tests: &[TestId]) -> Arc<[TestId]> {
    let mut seen = BTreeSet::new();
    tests
        .iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .collect()
}
