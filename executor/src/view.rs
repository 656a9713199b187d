//! What the executor knows of the lab: the domain's own fold of the events stream
//! ([`runledger_domain::evolve_compact`], the same the handler decides on), plus the little only
//! an executor needs (where each assignment is in the log, attempts whose executor was lost, the
//! Jenkins builds of runs that ended in error). [`LabView::apply`] takes events in log order;
//! the feed ([`crate::feed`]) keeps one up to date. Pure and synchronous. Credentials stay
//! [`SealedSecret`](runledger_types::SealedSecret)s here: [`unseal_target`] opens them only when
//! a driver is about to connect.

mod leftovers;
mod model;
mod target;
#[cfg(test)]
mod tests;

pub use leftovers::Abandoned;
pub use model::{
    Assignment, EndedJenkinsRun, MachineInfo, Resolved, ResolvedJenkinsRun, ResolvedRun,
    ResolvedVenv, RunInfo, ShardSelection, TestCaseInfo, VenvInfo, VenvStatus, ViewError,
};
pub use target::{Target, UnsealError, unseal_target};

use leftovers::Leftovers;
use runledger_domain::{Lab, RunPhase, RunState, evolve_compact};
use runledger_types::{EnvName, Event, MachineId, RunId, RunStatus, TestCaseId, VenvId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The executor's view of the log. Finished runs are kept as their final status only (the
/// domain's compact fold forgets the rest).
#[derive(Debug, Clone, Default)]
pub struct LabView {
    /// The lab as the domain folds it; its position is the view's.
    lab: Lab,
    /// Position of the latest `run_assigned` of each unfinished run: a work item at another
    /// position is stale. The domain does not know positions, only the order of events.
    assigned_at: HashMap<RunId, i64>,
    /// What an executor must still clean up after the domain has moved on.
    leftovers: Leftovers,
}

impl LabView {
    /// An empty view at position 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The position of the last event applied (or skipped); 0 before any.
    pub fn position(&self) -> i64 {
        self.lab.position()
    }

    /// Moves the position past an event that could not be decoded, without changing anything.
    pub fn skip(&mut self, position: i64) {
        self.lab.set_position(self.position().max(position));
    }

    /// Folds the event at `position`. Events at or before the current position were already
    /// applied and are ignored (returns `false`).
    pub fn apply(&mut self, position: i64, event: &Event) -> bool {
        if position <= self.position() {
            return false;
        }
        // The leftovers of an attempt are read from the state the event ends.
        match event {
            Event::RunQueued(e) => self.abandon(e.run_id),
            Event::RunFinished(e) => {
                if e.error_code.as_deref() == Some(leftovers::EXECUTOR_LOST) {
                    self.abandon(e.run_id);
                }
                if e.status == RunStatus::Error {
                    self.keep_jenkins_build(e.run_id);
                }
                self.assigned_at.remove(&e.run_id);
            }
            Event::RunAssigned(e) if self.lab.run(&e.run_id).is_some() => {
                self.assigned_at.insert(e.run_id, position);
            }
            _ => {}
        }
        evolve_compact(&mut self.lab, event);
        self.lab.set_position(position);
        if let Event::RunStarted(e) = event {
            let machine_id = self.assignment(e.run_id).and_then(|a| a.machine_id);
            self.leftovers.attempt_started(e.run_id, machine_id);
        }
        true
    }

    /// The unfinished runs whose latest attempt `executor` started, ascending id.
    pub fn runs_started_by(&self, executor: &str) -> Vec<RunId> {
        // Only a running run has a started attempt: the domain indexes them.
        self.lab
            .running_runs()
            .filter(|(_, run)| has_attempt(run) && run.executor.as_deref() == Some(executor))
            .map(|(run_id, _)| *run_id)
            .collect()
    }

    /// A machine, retired or not.
    pub fn machine(&self, machine_id: MachineId) -> Option<MachineInfo> {
        let machine = self.lab.machine(&machine_id)?;
        Some(MachineInfo::new(machine_id, machine))
    }

    /// A venv, removed or not.
    pub fn venv(&self, venv_id: VenvId) -> Option<VenvInfo> {
        let venv = self.lab.venv(&venv_id)?;
        Some(VenvInfo::new(venv_id, venv))
    }

    /// A test case.
    pub fn test_case(&self, test_case_id: TestCaseId) -> Option<TestCaseInfo> {
        let test_case = self.lab.test_case(&test_case_id)?;
        Some(TestCaseInfo::new(test_case_id, test_case))
    }

    /// A run that has not finished.
    pub fn run(&self, run_id: RunId) -> Option<RunInfo> {
        let run = self.open_run(run_id)?;
        let jenkins = run.jenkins.as_ref();
        Some(RunInfo {
            test_case_id: run.test_case_id,
            env: run.env.clone(),
            tests: run.tests.clone(),
            assignment: self.assignment(run_id),
            executor: run.executor.clone().filter(|_| has_attempt(run)),
            cancel_requested: run.cancel_requested,
            jenkins_queue_item: jenkins.and_then(|j| j.queue_item.clone()),
            jenkins_build: jenkins.and_then(|j| j.build.clone()),
            shard: run.group.as_ref().and_then(|membership| {
                let split = self.lab.group(&membership.group_id)?.split.clone()?;
                Some(ShardSelection {
                    index: membership.shard,
                    split,
                })
            }),
        })
    }

    /// How a run ended, if it has.
    pub fn finished(&self, run_id: RunId) -> Option<RunStatus> {
        self.lab
            .forgotten_run(&run_id)
            .or_else(|| match self.lab.run(&run_id)?.phase {
                RunPhase::Finished(status) => Some(status),
                _ => None,
            })
    }

    /// The domain's state of a run that has not finished.
    fn open_run(&self, run_id: RunId) -> Option<&RunState> {
        self.lab
            .run(&run_id)
            .filter(|run| !matches!(run.phase, RunPhase::Finished(_)))
    }

    /// The latest assignment of an unfinished run, unless it was queued again since.
    fn assignment(&self, run_id: RunId) -> Option<Assignment> {
        let run = self.open_run(run_id).filter(|run| has_attempt(run))?;
        Some(Assignment {
            venv_id: run.venv_id,
            machine_id: run.machine_id,
            attempt: run.attempt,
            position: *self.assigned_at.get(&run_id)?,
        })
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
        let run_env = overridable_env(&run.env, &test_case.env_overridable);
        let Some(venv_id) = assignment.venv_id else {
            let job = test_case
                .jenkins
                .clone()
                .ok_or(ViewError::NotAssigned(run_id))?;
            return Ok(Resolved::Jenkins(Box::new(ResolvedJenkinsRun {
                run_id,
                assignment,
                job,
                run_env,
                timeout_s: test_case.timeout_s,
                max_output_bytes: test_case.max_output_bytes,
                queue_item: run.jenkins_queue_item,
                build: run.jenkins_build,
            })));
        };
        let ResolvedVenv { venv, machine } = self.resolve_venv(venv_id)?;
        Ok(Resolved::Venv(Box::new(ResolvedRun {
            run_id,
            assignment,
            test_case,
            run_env,
            tests: run.tests,
            venv,
            machine,
            cancel_requested: run.cancel_requested,
            shard: run.shard,
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
        Ok(ResolvedVenv { venv, machine })
    }
}

/// True while the run holds an attempt (assigned or running): a run queued again has none, and
/// the executor and venv the domain still remembers from its last attempt are no longer its.
fn has_attempt(run: &RunState) -> bool {
    matches!(run.phase, RunPhase::Assigned | RunPhase::Running)
}

/// The part of a run's env its test case lets it set. The handler refuses any other name, so
/// this drops something only for runs recorded before that check: a second line of defence.
fn overridable_env(
    env: &BTreeMap<EnvName, String>,
    overridable: &BTreeSet<EnvName>,
) -> BTreeMap<EnvName, String> {
    env.iter()
        .filter(|(name, _)| !name.is_protected() && overridable.contains(*name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}
