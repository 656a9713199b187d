//! Venv matching and the run queue.
//!
//! A venv can serve a run when it is **free** (provisioned, not leased, not removed), its machine
//! is not retired, and every part of the run's selector holds: the same venv if `venv_id` is
//! given, the same machine if `machine_id` is given, and a machine carrying all the `labels`.
//!
//! Two rules keep scheduling fair and safe:
//! - **First in, first out.** Whenever a venv becomes usable (provisioned, released, or its
//!   machine's labels changed), the *oldest* queued run that it can serve gets it; queue order is
//!   the order of the `run_queued` events. So while a venv is free, no queued run could use it,
//!   and a new run only takes a free venv no older run wanted.
//! - **One lease per venv.** Only a free venv is leased. That is the domain's half of the
//!   guarantee; the store's stream-version check on `venv-<id>` is the other half.
//!
//! A run that names a Python version (a matrix member's) is served only by a venv whose
//! interpreter reported that version when it was provisioned.
//!
//! A run group's members queue like any run, with one rule more (docs/groups.md): when a member
//! leaves the queue for a venv, the group's other waiting members go to the back of the queue,
//! so a run queued after a group waits for at most one member of it per freed venv.
//!
//! When several free venvs match a new run, the one with the smallest [`VenvId`] is chosen, so
//! decisions are deterministic.

use crate::evolve::evolve;
use crate::state::{Lab, MachineState, RunSelector, VenvState, VenvStatus};
use runledger_types::event::{RunAssigned, VenvLeased};
use runledger_types::{Event, MachineId, RunId, VenvId};

/// `run_queued` reason: some non-retired machine matches, but none of its venvs is free.
pub const NO_FREE_VENV: &str = "no_free_venv";
/// `run_queued` reason: no non-retired machine matches the selector (yet).
pub const NO_MATCHING_MACHINE: &str = "no_matching_machine";

/// True when `machine` is not retired and satisfies the selector's machine and labels.
pub fn machine_matches(
    selector: &RunSelector,
    machine_id: MachineId,
    machine: &MachineState,
) -> bool {
    !machine.retired
        && selector
            .machine_id
            .is_none_or(|wanted| wanted == machine_id)
        && selector.labels.is_subset(&machine.labels)
}

/// True when `venv` could serve a run with `selector` right now.
pub fn can_serve(lab: &Lab, selector: &RunSelector, venv_id: VenvId, venv: &VenvState) -> bool {
    venv.status == VenvStatus::Free
        && selector.venv_id.is_none_or(|wanted| wanted == venv_id)
        && selector.python.as_ref().is_none_or(|wanted| {
            venv.python_version
                .as_deref()
                .is_some_and(|reported| wanted.matches(reported))
        })
        && lab
            .machine(&venv.machine_id)
            .is_some_and(|machine| machine_matches(selector, venv.machine_id, machine))
}

/// The free venv with the smallest id that can serve `selector`.
pub fn free_venv_for(lab: &Lab, selector: &RunSelector) -> Option<(VenvId, MachineId)> {
    lab.free_venvs()
        .find(|(id, venv)| can_serve(lab, selector, **id, venv))
        .map(|(id, venv)| (*id, venv.machine_id))
}

/// The oldest queued run that the venv `venv_id` can serve now.
pub fn oldest_queued_for(lab: &Lab, venv_id: VenvId) -> Option<RunId> {
    let venv = lab.venv(&venv_id)?;
    lab.queued_runs().find(|run_id| {
        lab.run(run_id)
            .is_some_and(|run| can_serve(lab, &run.selector, venv_id, venv))
    })
}

/// Why a run that found no free venv waits: see [`NO_FREE_VENV`], [`NO_MATCHING_MACHINE`].
pub fn queue_reason(lab: &Lab, selector: &RunSelector) -> &'static str {
    let venv_machine = selector
        .venv_id
        .and_then(|venv_id| lab.venv(&venv_id))
        .map(|venv| venv.machine_id);
    let matching = lab.machines.iter().any(|(id, machine)| {
        venv_machine.is_none_or(|wanted| wanted == *id) && machine_matches(selector, *id, machine)
    });
    if matching {
        NO_FREE_VENV
    } else {
        NO_MATCHING_MACHINE
    }
}

/// The two events that give `venv_id` to `run_id`: `venv_leased`, then `run_assigned`.
pub fn assignment(
    run_id: RunId,
    venv_id: VenvId,
    machine_id: MachineId,
    attempt: u32,
) -> [Event; 2] {
    [
        Event::VenvLeased(VenvLeased { venv_id, run_id }),
        Event::RunAssigned(RunAssigned {
            run_id,
            venv_id: Some(venv_id),
            machine_id: Some(machine_id),
            attempt,
        }),
    ]
}

/// Appends to `decided` the assignments that follow from it: `decided` is folded into a scratch
/// copy of `lab`, then each of `venvs` (in the given order) that is free goes to the oldest
/// queued run it can serve.
pub(crate) fn then_fill(
    lab: &Lab,
    mut decided: Vec<Event>,
    venvs: impl IntoIterator<Item = VenvId>,
) -> Vec<Event> {
    let mut scratch = lab.clone();
    for event in &decided {
        evolve(&mut scratch, event);
    }
    for venv_id in venvs {
        let Some(run_id) = oldest_queued_for(&scratch, venv_id) else {
            continue;
        };
        let (Some(venv), Some(run)) = (scratch.venv(&venv_id), scratch.run(&run_id)) else {
            continue;
        };
        for event in assignment(run_id, venv_id, venv.machine_id, run.attempt + 1) {
            evolve(&mut scratch, &event);
            decided.push(event);
        }
    }
    decided
}
