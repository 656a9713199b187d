//! What the executor knows of the lab: machines, venvs, test cases and runs, folded from the
//! events stream in log order ([`LabView::apply`]). Pure and synchronous; the feed
//! ([`crate::feed`]) keeps one up to date. Credentials stay [`SealedSecret`](runledger_types::SealedSecret)s here:
//! [`unseal_target`] opens them only when a driver is about to connect.

mod model;
mod target;
#[cfg(test)]
mod tests;

pub use model::{
    Assignment, EndedJenkinsRun, MachineInfo, Resolved, ResolvedJenkinsRun, ResolvedRun,
    ResolvedVenv, RunInfo, TestCaseInfo, VenvInfo, VenvStatus, ViewError,
};
pub use target::{Target, UnsealError, unseal_target};

use runledger_types::event::{MachineRegistered, MachineUpdated, RunAssigned, TestCaseDefined};
use runledger_types::{EnvName, Event, MachineId, RunId, RunStatus, TestCaseId, VenvId};
use std::collections::{BTreeMap, HashMap};

/// The error code of a run whose executor was lost.
const EXECUTOR_LOST: &str = "executor_lost";

/// The executor's fold of the log. Finished runs are kept as their final status only.
#[derive(Debug, Clone, Default)]
pub struct LabView {
    position: i64,
    machines: HashMap<MachineId, MachineInfo>,
    venvs: HashMap<VenvId, VenvInfo>,
    test_cases: HashMap<TestCaseId, TestCaseInfo>,
    runs: HashMap<RunId, RunInfo>,
    finished: HashMap<RunId, RunStatus>,
    /// Attempts whose executor was lost, by run: who started them and on which machine, until
    /// a later attempt starts on that machine (it ends the leftovers itself).
    abandoned: HashMap<RunId, Abandoned>,
    /// Runs of Jenkins jobs that ended in error with a queue item or build recorded, whose
    /// build may outlive them (few: errors of Jenkins runs only).
    ended_jenkins: HashMap<RunId, EndedJenkinsRun>,
}

/// An attempt that ended because its executor was lost: its processes may still run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// The executor that started it.
    pub executor: String,
    /// Where it ran.
    pub machine_id: MachineId,
}

impl LabView {
    /// An empty view at position 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The position of the last event applied (or skipped); 0 before any.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Moves the position past an event that could not be decoded, without changing anything.
    pub fn skip(&mut self, position: i64) {
        self.position = self.position.max(position);
    }

    /// Folds the event at `position`. Events at or before the current position were already
    /// applied and are ignored (returns `false`).
    pub fn apply(&mut self, position: i64, event: &Event) -> bool {
        if position <= self.position {
            return false;
        }
        self.position = position;
        match event {
            Event::MachineRegistered(e) => self.machine_registered(e),
            Event::MachineUpdated(e) => self.machine_updated(e),
            Event::HostKeyPinned(e) => self.with_machine(e.machine_id, |m| {
                m.host_key = Some(e.fingerprint.clone());
            }),
            Event::MachineRetired(e) => self.with_machine(e.machine_id, |m| m.retired = true),
            Event::VenvAdded(e) => {
                let venv = VenvInfo {
                    venv_id: e.venv_id,
                    machine_id: e.machine_id,
                    name: e.name.clone(),
                    path: e.path.clone(),
                    python: e.python.clone(),
                    requirements: e.requirements.clone(),
                    status: VenvStatus::Provisioning,
                };
                self.venvs.insert(e.venv_id, venv);
            }
            Event::VenvProvisioned(e) => self.set_venv(e.venv_id, VenvStatus::Free),
            Event::VenvProvisioningFailed(e) => self.set_venv(e.venv_id, VenvStatus::Broken),
            Event::VenvLeased(e) => self.set_venv(e.venv_id, VenvStatus::Leased(e.run_id)),
            Event::VenvReleased(e) => self.set_venv(e.venv_id, VenvStatus::Free),
            Event::VenvRemoved(e) => self.set_venv(e.venv_id, VenvStatus::Removed),
            Event::TestCaseDefined(e) => self.test_case_defined(e),
            Event::RunRequested(e) => {
                let run = RunInfo {
                    test_case_id: e.test_case_id,
                    env: e.env.clone(),
                    assignment: None,
                    executor: None,
                    cancel_requested: false,
                    jenkins_queue_item: None,
                    jenkins_build: None,
                };
                self.runs.insert(e.run_id, run);
            }
            Event::RunAssigned(e) => self.run_assigned(position, e),
            Event::RunStarted(e) => {
                let machine = self
                    .run(e.run_id)
                    .and_then(|r| r.assignment)
                    .and_then(|a| a.machine_id);
                if machine.is_some()
                    && self.abandoned.get(&e.run_id).map(|a| a.machine_id) == machine
                {
                    self.abandoned.remove(&e.run_id);
                }
                self.with_run(e.run_id, |r| {
                    r.executor = Some(e.executor.clone());
                });
            }
            Event::RunCancelRequested(e) => self.with_run(e.run_id, |r| r.cancel_requested = true),
            Event::RunFinished(e) => {
                if e.error_code.as_deref() == Some(EXECUTOR_LOST) {
                    self.abandon(e.run_id);
                }
                if e.status == RunStatus::Error {
                    self.keep_jenkins_build(e.run_id);
                }
                self.runs.remove(&e.run_id);
                self.finished.insert(e.run_id, e.status);
            }
            // Queued again (a retry): the run is no longer any executor's.
            Event::RunQueued(e) => {
                self.abandon(e.run_id);
                self.with_run(e.run_id, |r| {
                    r.assignment = None;
                    r.executor = None;
                });
            }
            Event::JenkinsBuildQueued(e) => self.with_run(e.run_id, |r| {
                r.jenkins_queue_item = Some(e.queue_item.clone());
            }),
            Event::JenkinsBuildStarted(e) => self.with_run(e.run_id, |r| {
                r.jenkins_build = Some((e.number, e.url.clone()));
            }),
            Event::UserRegistered(_)
            | Event::UserDisabled(_)
            | Event::PasswordChanged(_)
            | Event::TokensRevoked(_)
            | Event::RunOutput(_)
            | Event::ExecutorHeartbeat(_)
            | Event::CommandRejected(_) => {}
        }
        true
    }

    /// Keeps what is needed to stop the Jenkins build of a run ending in error.
    fn keep_jenkins_build(&mut self, run_id: RunId) {
        let Some(run) = self.runs.get(&run_id) else {
            return;
        };
        if run.jenkins_queue_item.is_none() && run.jenkins_build.is_none() {
            return;
        }
        let Some(job) = self
            .test_cases
            .get(&run.test_case_id)
            .and_then(|test_case| test_case.jenkins.clone())
        else {
            return;
        };
        let ended = EndedJenkinsRun {
            job,
            queue_item: run.jenkins_queue_item.clone(),
            build: run.jenkins_build.clone(),
        };
        self.ended_jenkins.insert(run_id, ended);
    }

    /// The Jenkins build of `run_id`, if the run ended in error with one recorded.
    pub fn ended_jenkins(&self, run_id: RunId) -> Option<&EndedJenkinsRun> {
        self.ended_jenkins.get(&run_id)
    }

    /// Records the run's current attempt as abandoned, if an executor had started it.
    fn abandon(&mut self, run_id: RunId) {
        let Some(run) = self.runs.get(&run_id) else {
            return;
        };
        // A Jenkins build leaves no process behind on a machine of the lab.
        let machine_id = run.assignment.and_then(|a| a.machine_id);
        if let (Some(executor), Some(machine_id)) = (&run.executor, machine_id) {
            let abandoned = Abandoned {
                executor: executor.clone(),
                machine_id,
            };
            self.abandoned.insert(run_id, abandoned);
        }
    }

    /// The machine of `run_id`'s lost attempt, if its executor was lost and no later attempt has
    /// started on that machine since.
    pub fn lost_attempt_machine(&self, run_id: RunId) -> Option<&MachineInfo> {
        let abandoned = self.abandoned.get(&run_id)?;
        self.machines.get(&abandoned.machine_id)
    }

    /// The lost attempts `executor` started whose leftovers nobody has ended yet, with their
    /// machines, ascending run id.
    pub fn abandoned_by(&self, executor: &str) -> Vec<(RunId, MachineInfo)> {
        let mut abandoned: Vec<(RunId, MachineInfo)> = self
            .abandoned
            .iter()
            .filter(|(_, a)| a.executor == executor)
            .filter_map(|(run_id, a)| Some((*run_id, self.machines.get(&a.machine_id)?.clone())))
            .collect();
        abandoned.sort_unstable_by_key(|(run_id, _)| *run_id);
        abandoned
    }

    /// The unfinished runs whose latest attempt `executor` started, ascending id.
    pub fn runs_started_by(&self, executor: &str) -> Vec<RunId> {
        let mut started: Vec<RunId> = self
            .runs
            .iter()
            .filter(|(_, run)| run.executor.as_deref() == Some(executor))
            .map(|(run_id, _)| *run_id)
            .collect();
        started.sort_unstable();
        started
    }

    /// A machine, retired or not.
    pub fn machine(&self, machine_id: MachineId) -> Option<&MachineInfo> {
        self.machines.get(&machine_id)
    }

    /// A venv, removed or not.
    pub fn venv(&self, venv_id: VenvId) -> Option<&VenvInfo> {
        self.venvs.get(&venv_id)
    }

    /// A test case.
    pub fn test_case(&self, test_case_id: TestCaseId) -> Option<&TestCaseInfo> {
        self.test_cases.get(&test_case_id)
    }

    /// A run that has not finished.
    pub fn run(&self, run_id: RunId) -> Option<&RunInfo> {
        self.runs.get(&run_id)
    }

    /// How a run ended, if it has.
    pub fn finished(&self, run_id: RunId) -> Option<RunStatus> {
        self.finished.get(&run_id).copied()
    }

    /// The run's latest assignment with everything needed to drive it: its test case, venv and
    /// machine, or its Jenkins job and the build earlier attempts recorded.
    pub fn resolve(&self, run_id: RunId) -> Result<Resolved, ViewError> {
        if let Some(status) = self.finished(run_id) {
            return Err(ViewError::RunFinished { run_id, status });
        }
        let run = self.run(run_id).ok_or(ViewError::UnknownRun(run_id))?;
        let assignment = run.assignment.ok_or(ViewError::NotAssigned(run_id))?;
        let test_case = self
            .test_case(run.test_case_id)
            .ok_or(ViewError::UnknownTestCase(run.test_case_id))?;
        let Some(venv_id) = assignment.venv_id else {
            let job = test_case
                .jenkins
                .clone()
                .ok_or(ViewError::NotAssigned(run_id))?;
            return Ok(Resolved::Jenkins(Box::new(ResolvedJenkinsRun {
                run_id,
                assignment,
                job,
                run_env: overridable_env(&run.env, test_case),
                timeout_s: test_case.timeout_s,
                queue_item: run.jenkins_queue_item.clone(),
                build: run.jenkins_build.clone(),
            })));
        };
        let ResolvedVenv { venv, machine } = self.resolve_venv(venv_id)?;
        Ok(Resolved::Venv(Box::new(ResolvedRun {
            run_id,
            assignment,
            test_case: test_case.clone(),
            run_env: overridable_env(&run.env, test_case),
            venv,
            machine,
            cancel_requested: run.cancel_requested,
        })))
    }

    /// [`Self::resolve`] for a run that uses a venv; a Jenkins run is [`ViewError::NotAssigned`].
    pub fn resolve_run(&self, run_id: RunId) -> Result<ResolvedRun, ViewError> {
        match self.resolve(run_id)? {
            Resolved::Venv(run) => Ok(*run),
            Resolved::Jenkins(_) => Err(ViewError::NotAssigned(run_id)),
        }
    }

    /// The venv (unless removed) with its machine.
    pub fn resolve_venv(&self, venv_id: VenvId) -> Result<ResolvedVenv, ViewError> {
        let venv = self
            .venv(venv_id)
            .filter(|venv| venv.status != VenvStatus::Removed)
            .ok_or(ViewError::UnknownVenv(venv_id))?;
        let machine = self
            .machine(venv.machine_id)
            .ok_or(ViewError::UnknownMachine(venv.machine_id))?;
        Ok(ResolvedVenv {
            venv: venv.clone(),
            machine: machine.clone(),
        })
    }

    fn machine_registered(&mut self, e: &MachineRegistered) {
        let machine = MachineInfo {
            machine_id: e.machine_id,
            name: e.name.clone(),
            host: e.host.clone(),
            port: e.port,
            os: e.os,
            username: e.username.clone(),
            password: e.password.clone(),
            private_key: e.private_key.clone(),
            host_key: e.host_key.clone(),
            retired: false,
        };
        self.machines.insert(e.machine_id, machine);
    }

    fn machine_updated(&mut self, e: &MachineUpdated) {
        self.with_machine(e.machine_id, |m| {
            fn set<T: Clone>(field: &mut T, new: Option<&T>) {
                if let Some(new) = new {
                    *field = new.clone();
                }
            }
            set(&mut m.name, e.name.as_ref());
            set(&mut m.host, e.host.as_ref());
            set(&mut m.port, e.port.as_ref());
            set(&mut m.os, e.os.as_ref());
            set(&mut m.username, e.username.as_ref());
            if e.password.is_some() {
                m.password.clone_from(&e.password);
            }
            if e.private_key.is_some() {
                m.private_key.clone_from(&e.private_key);
            }
            if e.host_key.is_some() {
                m.host_key.clone_from(&e.host_key);
            }
        });
    }

    fn test_case_defined(&mut self, e: &TestCaseDefined) {
        let test_case = TestCaseInfo {
            test_case_id: e.test_case_id,
            name: e.name.clone(),
            command: e.command.clone(),
            jenkins: e.jenkins.clone(),
            files: e.files.clone(),
            env: e.env.clone(),
            env_overridable: e.env_overridable.clone(),
            timeout_s: e.timeout_s,
            junit_xml: e.junit_xml.clone(),
            retries: e.retries,
            max_output_bytes: e.max_output_bytes,
        };
        self.test_cases.insert(e.test_case_id, test_case);
    }

    fn run_assigned(&mut self, position: i64, e: &RunAssigned) {
        self.with_run(e.run_id, |run| {
            run.assignment = Some(Assignment {
                venv_id: e.venv_id,
                machine_id: e.machine_id,
                attempt: e.attempt,
                position,
            });
            run.executor = None;
            run.cancel_requested = false;
        });
    }

    fn with_machine(&mut self, machine_id: MachineId, change: impl FnOnce(&mut MachineInfo)) {
        if let Some(machine) = self.machines.get_mut(&machine_id) {
            change(machine);
        }
    }

    fn set_venv(&mut self, venv_id: VenvId, status: VenvStatus) {
        if let Some(venv) = self.venvs.get_mut(&venv_id) {
            venv.status = status;
        }
    }

    fn with_run(&mut self, run_id: RunId, change: impl FnOnce(&mut RunInfo)) {
        if let Some(run) = self.runs.get_mut(&run_id) {
            change(run);
        }
    }
}

/// The part of a run's env its test case lets it set. The handler refuses any other name, so
/// this drops something only for runs recorded before that check: a second line of defence.
fn overridable_env(
    env: &BTreeMap<EnvName, String>,
    test_case: &TestCaseInfo,
) -> BTreeMap<EnvName, String> {
    env.iter()
        .filter(|(name, _)| !name.is_protected() && test_case.env_overridable.contains(*name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}
