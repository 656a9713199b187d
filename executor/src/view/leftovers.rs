//! What an executor must still clean up after the domain has moved on: processes of attempts
//! whose executor was lost, and Jenkins builds of runs that ended in error. The domain forgets a
//! finished run and an attempt that was queued again; these few records outlive them.

use super::{EndedJenkinsRun, LabView, MachineInfo};
use runledger_types::{MachineId, RunId};
use std::collections::HashMap;

/// The error code of a run whose executor was lost.
pub(super) const EXECUTOR_LOST: &str = "executor_lost";

/// An attempt that ended because its executor was lost: its processes may still run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// The executor that started it.
    pub executor: String,
    /// Where it ran.
    pub machine_id: MachineId,
}

/// The executor-only records of [`LabView`]; the methods of `LabView` below keep and read them.
#[derive(Debug, Clone, Default)]
pub(super) struct Leftovers {
    /// Attempts whose executor was lost, by run: who started them and on which machine, until
    /// a later attempt starts on that machine (it ends the leftovers itself).
    pub(super) abandoned: HashMap<RunId, Abandoned>,
    /// Runs of Jenkins jobs that ended in error with a queue item or build recorded, whose
    /// build may outlive them (few: errors of Jenkins runs only).
    pub(super) ended_jenkins: HashMap<RunId, EndedJenkinsRun>,
}

impl Leftovers {
    /// A new attempt of `run_id` started on `machine_id`: if an abandoned attempt ran there, the
    /// new attempt ends its leftovers itself.
    pub(super) fn attempt_started(&mut self, run_id: RunId, machine_id: Option<MachineId>) {
        if machine_id.is_some() && self.abandoned.get(&run_id).map(|a| a.machine_id) == machine_id {
            self.abandoned.remove(&run_id);
        }
    }
}

impl LabView {
    /// Records the run's current attempt as abandoned, if an executor had started it.
    pub(super) fn abandon(&mut self, run_id: RunId) {
        let Some(run) = self.run(run_id) else {
            return;
        };
        // A Jenkins build leaves no process behind on a machine of the lab.
        let machine_id = run.assignment.and_then(|a| a.machine_id);
        if let (Some(executor), Some(machine_id)) = (run.executor, machine_id) {
            let abandoned = Abandoned {
                executor,
                machine_id,
            };
            self.leftovers.abandoned.insert(run_id, abandoned);
        }
    }

    /// Keeps what is needed to stop the Jenkins build of a run ending in error.
    pub(super) fn keep_jenkins_build(&mut self, run_id: RunId) {
        let Some(run) = self.lab.run(&run_id) else {
            return;
        };
        let Some(progress) = &run.jenkins else {
            return;
        };
        if progress.queue_item.is_none() && progress.build.is_none() {
            return;
        }
        let Some(job) = self
            .lab
            .test_case(&run.test_case_id)
            .and_then(|test_case| test_case.jenkins.clone())
        else {
            return;
        };
        let ended = EndedJenkinsRun {
            job,
            queue_item: progress.queue_item.clone(),
            build: progress.build.clone(),
        };
        self.leftovers.ended_jenkins.insert(run_id, ended);
    }

    /// The Jenkins build of `run_id`, if the run ended in error with one recorded.
    pub fn ended_jenkins(&self, run_id: RunId) -> Option<&EndedJenkinsRun> {
        self.leftovers.ended_jenkins.get(&run_id)
    }

    /// The machine of `run_id`'s lost attempt, if its executor was lost and no later attempt has
    /// started on that machine since.
    pub fn lost_attempt_machine(&self, run_id: RunId) -> Option<MachineInfo> {
        let abandoned = self.leftovers.abandoned.get(&run_id)?;
        self.machine(abandoned.machine_id)
    }

    /// The lost attempts `executor` started whose leftovers nobody has ended yet, with their
    /// machines, ascending run id.
    pub fn abandoned_by(&self, executor: &str) -> Vec<(RunId, MachineInfo)> {
        let mut abandoned: Vec<(RunId, MachineInfo)> = self
            .leftovers
            .abandoned
            .iter()
            .filter(|(_, a)| a.executor == executor)
            .filter_map(|(run_id, a)| Some((*run_id, self.machine(a.machine_id)?)))
            .collect();
        abandoned.sort_unstable_by_key(|(run_id, _)| *run_id);
        abandoned
    }
}
