//! Serializable views of the domain's state for `runledger audit state`. The domain's own state
//! types stay free of serde; these borrow from them and name things as the contract does.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use runledger_domain::scheduling::machine_matches;
use runledger_domain::{Lab, MachineState, RunPhase, RunSelector, RunState, VenvState, VenvStatus};
use runledger_types::{
    Actor, HostKeyFingerprint, Label, MachineId, Os, RunId, RunStatus, TestCaseId, VenvId, VenvName,
};
use serde::Serialize;
use std::collections::BTreeSet;

/// The point in the log a state was folded up to.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AsOf {
    /// The last event folded (0 for the empty log).
    pub position: i64,
    /// When that event was recorded (`null` for the empty log).
    pub recorded_at: Option<DateTime<Utc>>,
}

/// A run as it was.
#[derive(Debug, Serialize)]
pub struct RunView<'a> {
    run_id: RunId,
    /// `requested`, `queued`, `assigned`, `running` or `finished`.
    phase: &'static str,
    /// The contract's status (`queued` … `cancelled`); `null` while only requested.
    status: Option<RunStatus>,
    test_case_id: TestCaseId,
    user: &'a Actor,
    selector: SelectorView<'a>,
    venv_id: Option<VenvId>,
    machine_id: Option<MachineId>,
    attempt: u32,
    executor: Option<&'a str>,
    cancel_requested: bool,
    last_output_seq: u64,
}

impl<'a> RunView<'a> {
    /// The view of `run`.
    pub fn new(run_id: RunId, run: &'a RunState) -> Self {
        let (phase, status) = match run.phase {
            RunPhase::Requested => ("requested", None),
            RunPhase::Queued => ("queued", Some(RunStatus::Queued)),
            RunPhase::Assigned => ("assigned", Some(RunStatus::Assigned)),
            RunPhase::Running => ("running", Some(RunStatus::Running)),
            RunPhase::Finished(status) => ("finished", Some(status)),
        };
        Self {
            run_id,
            phase,
            status,
            test_case_id: run.test_case_id,
            user: &run.user,
            selector: SelectorView::new(&run.selector),
            venv_id: run.venv_id,
            machine_id: run.machine_id,
            attempt: run.attempt,
            executor: run.executor.as_deref(),
            cancel_requested: run.cancel_requested,
            last_output_seq: run.last_seq,
        }
    }
}

/// Which venvs a run may use.
#[derive(Debug, Serialize)]
struct SelectorView<'a> {
    machine_id: Option<MachineId>,
    labels: &'a BTreeSet<Label>,
    venv_id: Option<VenvId>,
}

impl<'a> SelectorView<'a> {
    fn new(selector: &'a RunSelector) -> Self {
        Self {
            machine_id: selector.machine_id,
            labels: &selector.labels,
            venv_id: selector.venv_id,
        }
    }
}

/// A venv as it was.
#[derive(Debug, Serialize)]
pub struct VenvView<'a> {
    venv_id: VenvId,
    machine_id: MachineId,
    name: &'a VenvName,
    /// `provisioning`, `free`, `leased`, `broken` or `removed`.
    status: &'static str,
    /// The run holding the lease, when leased.
    leased_by: Option<RunId>,
}

impl<'a> VenvView<'a> {
    /// The view of `venv`.
    pub fn new(venv_id: VenvId, venv: &'a VenvState) -> Self {
        let (status, leased_by) = match venv.status {
            VenvStatus::Provisioning => ("provisioning", None),
            VenvStatus::Free => ("free", None),
            VenvStatus::Leased(run_id) => ("leased", Some(run_id)),
            VenvStatus::Broken => ("broken", None),
            VenvStatus::Removed => ("removed", None),
        };
        Self {
            venv_id,
            machine_id: venv.machine_id,
            name: &venv.name,
            status,
            leased_by,
        }
    }
}

/// A machine as it was.
#[derive(Debug, Serialize)]
struct MachineView<'a> {
    machine_id: MachineId,
    owner: &'a Actor,
    os: Os,
    labels: &'a BTreeSet<Label>,
    host_key: Option<&'a HostKeyFingerprint>,
    retired: bool,
}

/// A queued run that one of the pool's venvs could serve once free.
#[derive(Debug, Serialize)]
struct QueuedRunView<'a> {
    run_id: RunId,
    test_case_id: TestCaseId,
    user: &'a Actor,
    selector: SelectorView<'a>,
}

/// A machine's pool as it was: the machine, its venvs, and the queue that could use them.
#[derive(Debug, Serialize)]
pub struct PoolView<'a> {
    machine: MachineView<'a>,
    /// Every venv of the machine, removed ones included, by id.
    venvs: Vec<VenvView<'a>>,
    /// Queued runs whose selector this machine satisfies, oldest first.
    queued_runs: Vec<QueuedRunView<'a>>,
}

impl<'a> PoolView<'a> {
    /// The pool of `machine_id`, or `None` when no such machine was registered.
    pub fn new(lab: &'a Lab, machine_id: MachineId) -> Option<Self> {
        let machine = lab.machine(&machine_id)?;
        let venvs = lab
            .venvs()
            .filter(|(_, venv)| venv.machine_id == machine_id)
            .map(|(id, venv)| VenvView::new(*id, venv))
            .collect();
        Some(Self {
            machine: MachineView {
                machine_id,
                owner: &machine.owner,
                os: machine.os,
                labels: &machine.labels,
                host_key: machine.host_key.as_ref(),
                retired: machine.retired,
            },
            venvs,
            queued_runs: queued_for(lab, machine_id, machine),
        })
    }
}

/// The queued runs, oldest first, that the machine satisfies (and, for a run that names a venv,
/// whose venv lives on it).
fn queued_for<'a>(
    lab: &'a Lab,
    machine_id: MachineId,
    machine: &MachineState,
) -> Vec<QueuedRunView<'a>> {
    lab.queued_runs()
        .filter_map(|run_id| lab.run(&run_id).map(|run| (run_id, run)))
        .filter(|(_, run)| machine_matches(&run.selector, machine_id, machine))
        .filter(|(_, run)| {
            run.selector.venv_id.is_none_or(|venv_id| {
                lab.venv(&venv_id)
                    .is_some_and(|venv| venv.machine_id == machine_id)
            })
        })
        .map(|(run_id, run)| QueuedRunView {
            run_id,
            test_case_id: run.test_case_id,
            user: &run.user,
            selector: SelectorView::new(&run.selector),
        })
        .collect()
}
