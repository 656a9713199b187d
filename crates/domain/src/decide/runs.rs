//! `start_run` and `cancel_run`.
//!
//! Any user may start a run on any machine that is not retired. Members cancel only their own
//! runs; admins and trusted systems cancel any.

use super::selection::{Selection, select};
use super::{live_machine, reject, require_test_case, run, venv};
use crate::authz::{Principal, forbidden, principal};
use crate::scheduling::{assignment, free_venv_for, queue_reason};
use crate::state::{Lab, RunPhase, RunSelector, TestCaseState, VenvStatus};
use runledger_types::command::{CancelRun, StartRun};
use runledger_types::event::{
    RunAssigned, RunCancelRequested, RunFinished, RunQueued, RunRequested, VenvReleased,
};
use runledger_types::{
    Actor, EnvName, Event, Rejection, RejectionCode, RunStatus, TestCaseId, VenvId,
};
use std::collections::{BTreeMap, BTreeSet};

/// Most runs one actor may have waiting in the queue: a script in a loop cannot grow the
/// queue, and the state every handler holds, without bound.
pub const MAX_QUEUED_RUNS_PER_ACTOR: u32 = 1000;

/// `run_requested`, then either `venv_leased` + `run_assigned` (a free venv matches; the
/// smallest id wins) or `run_queued` with the reason it waits.
pub(super) fn start_run(
    lab: &Lab,
    actor: &Actor,
    command: &StartRun,
) -> Result<Vec<Event>, Rejection> {
    if lab.run(&command.run_id).is_some() || lab.forgotten_run(&command.run_id).is_some() {
        return reject(
            RejectionCode::RunExists,
            format!("run {} already exists", command.run_id),
        );
    }
    let test_case = require_test_case(lab, command.test_case_id)?;
    check_run_env(&command.env, command.test_case_id, test_case)?;
    let selection = select(lab, command)?;
    if test_case.jenkins.is_some() {
        return start_jenkins_run(actor, command, selection);
    }
    if let Some(machine_id) = command.machine_id {
        live_machine(lab, machine_id)?;
    }
    if let Some(venv_id) = command.venv_id {
        check_chosen_venv(lab, command, venv_id)?;
    }
    let selector = RunSelector {
        machine_id: command.machine_id,
        labels: command.labels.clone(),
        venv_id: command.venv_id,
        python: None,
    };
    let run_id = command.run_id;
    let mut events = vec![Event::RunRequested(RunRequested {
        run_id,
        test_case_id: command.test_case_id,
        user: actor.clone(),
        machine_id: command.machine_id,
        labels: command.labels.clone(),
        venv_id: command.venv_id,
        env: command.env.clone(),
        rerun_of: selection.rerun_of,
        tests: selection.tests,
        python: None,
        group: None,
    })];
    match free_venv_for(lab, &selector) {
        Some((venv_id, machine_id)) => events.extend(assignment(run_id, venv_id, machine_id, 1)),
        None if lab.queued_by(actor) >= MAX_QUEUED_RUNS_PER_ACTOR => {
            return reject(
                RejectionCode::TooManyQueuedRuns,
                format!(
                    "{actor} already has {MAX_QUEUED_RUNS_PER_ACTOR} runs waiting in the queue; \
                     start more once some have been assigned"
                ),
            );
        }
        None => events.push(Event::RunQueued(RunQueued {
            run_id,
            reason: queue_reason(lab, &selector).to_owned(),
        })),
    }
    Ok(events)
}

/// A run's `env` may set only the names its test case lists in `env_overridable`, and never a
/// protected one (the test case's own list cannot hold one, but events recorded before the
/// list was checked might).
pub(super) fn check_run_env(
    env: &BTreeMap<EnvName, String>,
    test_case_id: TestCaseId,
    test_case: &TestCaseState,
) -> Result<(), Rejection> {
    let refused: Vec<&str> = env
        .keys()
        .filter(|name| name.is_protected() || !test_case.env_overridable.contains(*name))
        .map(|name| name.as_str())
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let allowed = match test_case.env_overridable.is_empty() {
        true => "none".to_owned(),
        false => test_case
            .env_overridable
            .iter()
            .map(|name| name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    };
    reject(
        RejectionCode::EnvNotOverridable,
        format!(
            "payload.env: test case {} does not let runs set {} (overridable: {allowed})",
            test_case_id,
            refused.join(", ")
        ),
    )
}

/// A run of a Jenkins job: `run_requested` and at once `run_assigned` without venv or machine
/// (Jenkins queues builds itself). A machine, labels, venv or a selection of tests cannot apply
/// and are refused (`rerun_of` alone only links the runs).
fn start_jenkins_run(
    actor: &Actor,
    command: &StartRun,
    selection: Selection,
) -> Result<Vec<Event>, Rejection> {
    if command.machine_id.is_some()
        || command.venv_id.is_some()
        || !command.labels.is_empty()
        || selection.is_partial()
    {
        return reject(
            RejectionCode::NotAJenkinsRun,
            format!(
                "test case {} runs as a Jenkins job: machine_id, labels, venv_id and a selection \
                 of tests do not apply",
                command.test_case_id
            ),
        );
    }
    let run_id = command.run_id;
    Ok(vec![
        Event::RunRequested(RunRequested {
            run_id,
            test_case_id: command.test_case_id,
            user: actor.clone(),
            machine_id: None,
            labels: BTreeSet::new(),
            venv_id: None,
            env: command.env.clone(),
            rerun_of: selection.rerun_of,
            tests: Vec::new(),
            python: None,
            group: None,
        }),
        Event::RunAssigned(RunAssigned {
            run_id,
            venv_id: None,
            machine_id: None,
            attempt: 1,
        }),
    ])
}

/// A venv named by `start_run` must exist, be usable, and sit on the named machine (if any).
fn check_chosen_venv(lab: &Lab, command: &StartRun, venv_id: VenvId) -> Result<(), Rejection> {
    let found = venv(lab, venv_id)?;
    match found.status {
        VenvStatus::Removed => {
            return reject(
                RejectionCode::VenvRemoved,
                format!("venv {venv_id} was removed"),
            );
        }
        VenvStatus::Broken => {
            return reject(
                RejectionCode::VenvBroken,
                format!("venv {venv_id} failed to provision"),
            );
        }
        _ => {}
    }
    live_machine(lab, found.machine_id)?;
    match command.machine_id {
        Some(machine_id) if machine_id != found.machine_id => reject(
            RejectionCode::VenvMachineMismatch,
            format!(
                "venv {venv_id} is on machine {}, not on machine {machine_id}",
                found.machine_id
            ),
        ),
        _ => Ok(()),
    }
}

/// Cancels by phase:
/// - queued: `run_finished` (cancelled) at once; the run leaves the queue;
/// - assigned: `run_finished` (cancelled), `venv_released`, and the freed venv's next run;
/// - running: `run_cancel_requested`; the executor stops it and reports `run_finished`.
pub(super) fn cancel_run(
    lab: &Lab,
    actor: &Actor,
    command: &CancelRun,
) -> Result<Vec<Event>, Rejection> {
    let found = run(lab, command.run_id)?;
    if principal(lab, actor) == Principal::Member && found.user != *actor {
        return Err(forbidden(format!(
            "member {actor} may not cancel run {}: it was started by {}",
            command.run_id, found.user
        )));
    }
    let run_id = command.run_id;
    let cancelled = Event::RunFinished(RunFinished {
        run_id,
        status: RunStatus::Cancelled,
        exit_code: None,
        summary: None,
        reason: command.reason.clone(),
        error_code: None,
        tests: Vec::new(),
    });
    match (found.phase, found.venv_id) {
        (RunPhase::Finished(status), _) => reject(
            RejectionCode::RunFinished,
            format!("run {run_id} has already finished ({})", status.as_str()),
        ),
        (RunPhase::Running, _) if found.cancel_requested => reject(
            RejectionCode::CancelAlreadyRequested,
            format!("cancellation of run {run_id} was already requested"),
        ),
        (RunPhase::Running, _) => Ok(vec![Event::RunCancelRequested(RunCancelRequested {
            run_id,
            reason: command.reason.clone(),
        })]),
        (RunPhase::Assigned, Some(venv_id)) => {
            let released = Event::VenvReleased(VenvReleased { venv_id, run_id });
            Ok(crate::scheduling::then_fill(
                lab,
                vec![cancelled, released],
                [venv_id],
            ))
        }
        (RunPhase::Requested | RunPhase::Queued | RunPhase::Assigned, _) => Ok(vec![cancelled]),
    }
}
