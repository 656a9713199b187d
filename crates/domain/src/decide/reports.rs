//! The executor's run reports: `report_run_started`, `report_run_output`,
//! `report_run_finished`. Each is checked against the run's phase and against the executor that
//! holds the run; a repeated report changes nothing.

use super::{reject, run};
use crate::scheduling::then_fill;
use crate::state::{Lab, RunPhase, RunState};
use chrono::{DateTime, Utc};
use runledger_types::command::{
    ExpireExecutorLease, ReportRunFinished, ReportRunOutput, ReportRunStarted, first_seq_of_attempt,
};
use runledger_types::event::{
    RunAssigned, RunFinished, RunOutput, RunQueued, RunStarted, VenvReleased,
};
use runledger_types::{Event, Rejection, RejectionCode, RunId, RunStatus};

/// `run_started` for an assigned run. Repeated by the executor that started it: no events.
pub(super) fn run_started(
    lab: &Lab,
    executor: &str,
    command: &ReportRunStarted,
) -> Result<Vec<Event>, Rejection> {
    let run_id = command.run_id;
    let found = run(lab, run_id)?;
    match found.phase {
        RunPhase::Assigned => Ok(vec![Event::RunStarted(RunStarted {
            run_id,
            executor: executor.to_owned(),
        })]),
        RunPhase::Running => same_executor(run_id, found, executor).map(|()| Vec::new()),
        RunPhase::Finished(_) => finished(run_id),
        RunPhase::Requested | RunPhase::Queued => not_assigned(run_id),
    }
}

/// `run_output` for a running run, from the executor that started it; a chunk whose `seq` is
/// not above the highest recorded one changes nothing, and one that skips a `seq` is refused
/// (`output_gap`): pipelined chunks handled out of order by several handlers never lose text.
pub(super) fn run_output(
    lab: &Lab,
    executor: &str,
    command: &ReportRunOutput,
) -> Result<Vec<Event>, Rejection> {
    let run_id = command.run_id;
    let found = running_by(lab, run_id, executor)?;
    if command.seq <= found.last_seq {
        return Ok(Vec::new());
    }
    let expected = found
        .last_seq
        .max(first_seq_of_attempt(found.attempt))
        .saturating_add(1);
    if command.seq != expected {
        return reject(
            RejectionCode::OutputGap,
            format!(
                "run {run_id}: output chunk {} arrived before chunk {expected}",
                command.seq
            ),
        );
    }
    Ok(vec![Event::RunOutput(RunOutput {
        run_id,
        seq: command.seq,
        stream: command.stream,
        text: command.text.clone(),
    })])
}

/// The run `run_id` if it is running and `executor` started it; else `run_finished`,
/// `executor_mismatch` or `run_not_running`.
pub(super) fn running_by<'a>(
    lab: &'a Lab,
    run_id: RunId,
    executor: &str,
) -> Result<&'a RunState, Rejection> {
    let found = run(lab, run_id)?;
    match found.phase {
        RunPhase::Running => same_executor(run_id, found, executor).map(|()| found),
        RunPhase::Finished(_) => finished(run_id),
        _ => reject(
            RejectionCode::RunNotRunning,
            format!("run {run_id} is not running"),
        ),
    }
}

/// `run_finished` + `venv_released` + the freed venv's next run. Allowed while running (from the
/// executor that started it) or assigned (any executor: it failed before starting). An `error`
/// with retries left re-queues the run instead (see [`finish`]). A `failed` report is weighed
/// against the quarantines holding at `now` first ([`super::excuse`]).
pub(super) fn run_finished(
    lab: &Lab,
    executor: &str,
    command: &ReportRunFinished,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, Rejection> {
    let run_id = command.run_id;
    let found = run(lab, run_id)?;
    match found.phase {
        RunPhase::Running => same_executor(run_id, found, executor)?,
        RunPhase::Assigned => {}
        RunPhase::Finished(_) => return finished(run_id),
        RunPhase::Requested | RunPhase::Queued => return not_assigned(run_id),
    }
    let weighed = super::excuse::weigh(lab, found, command, now);
    Ok(finish(lab, found, &weighed))
}

/// The error code of runs whose executor stopped beating.
pub(crate) const EXECUTOR_LOST: &str = "executor_lost";

/// `expire_executor_lease`: every run `executor` is running ends as `error` (`executor_lost`),
/// or is retried. Whether the lease ran out is the sender's judgement (liveness is kept outside
/// the log, [`crate::leases`]); the log records the decision and what followed from it.
pub(super) fn expire_lease(
    lab: &Lab,
    command: &ExpireExecutorLease,
) -> Result<Vec<Event>, Rejection> {
    let executor = command.executor.as_str();
    let mut scratch = lab.clone();
    let mut decided = Vec::new();
    for (run_id, found) in lab
        .running_runs()
        .filter(|(_, run)| run.executor.as_deref() == Some(executor))
    {
        let lost = ReportRunFinished {
            run_id: *run_id,
            status: RunStatus::Error,
            exit_code: None,
            summary: None,
            reason: Some(format!(
                "executor lost: {executor} sent no heartbeat for its lease"
            )),
            error_code: Some(EXECUTOR_LOST.to_owned()),
            tests: Vec::new(),
        };
        // Each run's events are decided on top of the previous runs' (a freed venv may go to
        // a run queued behind another one's retry).
        for event in finish(&scratch, found, &lost) {
            crate::evolve(&mut scratch, &event);
            decided.push(event);
        }
    }
    Ok(decided)
}

/// The events that end a run holding a venv: the final status, the release, the next run. An
/// infrastructure `error` of a run whose test case allows more attempts, and whose cancellation
/// was not asked for, re-queues it instead (`venv_released`, `run_queued` with the reason); the
/// retry goes to the back of the queue like any other run.
fn finish(lab: &Lab, found: &RunState, command: &ReportRunFinished) -> Vec<Event> {
    let run_id = command.run_id;
    let retries = lab
        .test_case(&found.test_case_id)
        .map_or(0, |test_case| test_case.retries);
    if command.status == RunStatus::Error && !found.cancel_requested && found.attempt <= retries {
        let cause = command
            .reason
            .as_deref()
            .or(command.error_code.as_deref())
            .unwrap_or("infrastructure error");
        let queued = Event::RunQueued(RunQueued {
            run_id,
            reason: format!(
                "retrying: attempt {} of {} ended in error ({cause})",
                found.attempt,
                retries + 1
            ),
        });
        return match found.venv_id {
            Some(venv_id) => then_fill(
                lab,
                vec![
                    Event::VenvReleased(VenvReleased { venv_id, run_id }),
                    queued,
                ],
                [venv_id],
            ),
            // A Jenkins run waits for no venv: the next attempt is assigned at once.
            None => vec![
                queued,
                Event::RunAssigned(RunAssigned {
                    run_id,
                    venv_id: None,
                    machine_id: None,
                    attempt: found.attempt + 1,
                }),
            ],
        };
    }
    let mut decided = vec![Event::RunFinished(RunFinished {
        run_id,
        status: command.status,
        exit_code: command.exit_code,
        summary: command.summary,
        reason: command.reason.clone(),
        error_code: command.error_code.clone(),
        tests: command.tests.clone(),
    })];
    let Some(venv_id) = found.venv_id else {
        return decided;
    };
    decided.push(Event::VenvReleased(VenvReleased { venv_id, run_id }));
    then_fill(lab, decided, [venv_id])
}

pub(super) fn same_executor(
    run_id: RunId,
    found: &RunState,
    executor: &str,
) -> Result<(), Rejection> {
    match found.executor.as_deref() {
        Some(holder) if holder != executor => reject(
            RejectionCode::ExecutorMismatch,
            format!("run {run_id} is held by executor {holder}, not by {executor}"),
        ),
        _ => Ok(()),
    }
}

fn finished<T>(run_id: RunId) -> Result<T, Rejection> {
    reject(
        RejectionCode::RunFinished,
        format!("run {run_id} has already finished"),
    )
}

fn not_assigned<T>(run_id: RunId) -> Result<T, Rejection> {
    reject(
        RejectionCode::RunNotAssigned,
        format!("run {run_id} is queued: no venv is assigned to it yet"),
    )
}
