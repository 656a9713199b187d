//! `expire_executor_lease`, the lease watch's view ([`crate::leases::holdings`]), and retries
//! of infrastructure errors.

use crate::leases::holdings;
use crate::testing::*;
use crate::{RunPhase, VenvStatus};
use runledger_types::command::{ExpireExecutorLease, ReportRunFinished, ReportRunStarted};
use runledger_types::event::{self, RunFinished};
use runledger_types::{Command, Event, RejectionCode, RunId, RunStatus};

/// A heartbeat as older logs hold them: executors no longer send them, but the fold still
/// reads them (and ignores them).
fn heartbeat(executor: &str) -> Event {
    Event::ExecutorHeartbeat(event::ExecutorHeartbeat {
        executor: executor.into(),
        run_ids: Vec::new(),
    })
}

fn expire(executor: &str, heartbeats: i64) -> Command {
    Command::ExpireExecutorLease(ExpireExecutorLease {
        executor: executor.into(),
        heartbeats,
    })
}

/// `tc(1)` with `retries`.
fn test_case_with_retries(retries: u32) -> Event {
    match test_case(tc(1)) {
        Event::TestCaseDefined(mut defined) => {
            defined.retries = retries;
            Event::TestCaseDefined(defined)
        }
        other => other,
    }
}

/// r1 running on v1 by e1 (one heartbeat, as an old log has it), r2 queued behind it.
fn running(retries: u32) -> Vec<Event> {
    all([
        world(),
        vec![test_case_with_retries(retries), heartbeat("e1")],
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
        vec![requested(r(2), MEMBER), queued(r(2), "no_free_venv")],
    ])
}

fn lost(run_id: RunId) -> Event {
    Event::RunFinished(RunFinished {
        run_id,
        status: RunStatus::Error,
        exit_code: None,
        summary: None,
        reason: Some("executor lost: e1 sent no heartbeat for its lease".into()),
        error_code: Some("executor_lost".into()),
        tests: Vec::new(),
    })
}

#[test]
fn holdings_name_each_executor_its_runs() {
    let lab = given(&running(0)).lab;
    let held = holdings(&lab);
    assert_eq!(held.get("e1"), Some(&vec![r(1)]));
    assert_eq!(held.len(), 1);
}

#[test]
fn an_expired_lease_ends_the_run_as_executor_lost_and_frees_the_venv() {
    let lab = given(&running(0))
        .when(SYSTEM, expire("e1", 1))
        .then_expect(&[
            lost(r(1)),
            released(v(1), r(1)),
            assigned(r(2), v(1), m(1))[0].clone(),
            assigned(r(2), v(1), m(1))[1].clone(),
        ]);
    assert_eq!(
        lab.run(&r(1)).map(|run| run.phase),
        Some(RunPhase::Finished(RunStatus::Error))
    );
    assert!(holdings(&lab).is_empty());
}

#[test]
fn heartbeats_in_an_old_log_neither_renew_nor_block_an_expiry() {
    let mut history = running(0);
    history.push(heartbeat("e1"));
    given(&history).when(SYSTEM, expire("e1", 7)).then_expect(&[
        lost(r(1)),
        released(v(1), r(1)),
        assigned(r(2), v(1), m(1))[0].clone(),
        assigned(r(2), v(1), m(1))[1].clone(),
    ]);
}

#[test]
fn an_executor_holding_nothing_expires_to_no_events() {
    given(&running(0))
        .when(SYSTEM, expire("e2", 0))
        .then_expect(&[]);
}

#[test]
fn only_trusted_actors_expire_leases() {
    given(&running(0))
        .when(MEMBER, expire("e1", 1))
        .then_reject(RejectionCode::Forbidden);
}

#[test]
fn an_expiry_after_the_run_ended_changes_nothing() {
    let mut history = running(0);
    history.push(lost(r(1)));
    history.push(released(v(1), r(1)));
    given(&history)
        .when(SYSTEM, expire("e1", 1))
        .then_expect(&[]);
}

fn finish_report(run_id: RunId, status: RunStatus) -> Command {
    Command::ReportRunFinished(ReportRunFinished {
        run_id,
        status,
        exit_code: None,
        summary: None,
        reason: Some("ssh: connection refused".into()),
        error_code: Some("ssh_connect".into()),
        tests: Vec::new(),
    })
}

fn start_report(run_id: RunId) -> Command {
    Command::ReportRunStarted(ReportRunStarted { run_id })
}

#[test]
fn an_infrastructure_error_with_retries_left_requeues_the_run() {
    let mut lab = given(&running(1)).lab;
    let events = apply(&mut lab, SYSTEM, &expire("e1", 1)).expect("expired");
    // The venv goes back, the run is queued again behind r2, and r2 takes the venv.
    assert!(matches!(&events[0], Event::VenvReleased(e) if e.run_id == r(1)));
    assert!(
        matches!(&events[1], Event::RunQueued(e) if e.run_id == r(1) && e.reason.contains("attempt 1 of 2") && e.reason.contains("executor lost")),
        "{events:?}"
    );
    assert!(matches!(&events[3], Event::RunAssigned(e) if e.run_id == r(2)));
    assert_eq!(lab.run(&r(1)).map(|run| run.phase), Some(RunPhase::Queued));
    assert!(holdings(&lab).is_empty());
    // r2 passes; the venv goes to r1's second attempt.
    apply(&mut lab, EXEC2, &start_report(r(2))).expect("r2 started");
    let events = apply(&mut lab, EXEC2, &finish_report(r(2), RunStatus::Passed)).expect("r2 done");
    assert!(
        matches!(events.last(), Some(Event::RunAssigned(e)) if e.run_id == r(1) && e.attempt == 2),
        "{events:?}"
    );
    // The second attempt's error is final.
    apply(&mut lab, EXEC, &start_report(r(1))).expect("r1 started again");
    let events = apply(&mut lab, EXEC, &finish_report(r(1), RunStatus::Error)).expect("r1 done");
    assert!(
        matches!(&events[0], Event::RunFinished(e) if e.status == RunStatus::Error && e.error_code.as_deref() == Some("ssh_connect"))
    );
    assert_eq!(
        lab.venv(&v(1)).map(|venv| venv.status),
        Some(VenvStatus::Free)
    );
}

#[test]
fn a_cancelled_run_is_not_retried() {
    let mut lab = given(&running(2)).lab;
    let cancel = Command::CancelRun(runledger_types::command::CancelRun {
        run_id: r(1),
        reason: None,
    });
    apply(&mut lab, MEMBER, &cancel).expect("cancel requested");
    let events = apply(&mut lab, EXEC, &finish_report(r(1), RunStatus::Error)).expect("done");
    assert!(matches!(&events[0], Event::RunFinished(e) if e.status == RunStatus::Error));
}

#[test]
fn failed_tests_are_never_retried() {
    let (events, _) = given(&running(3))
        .when(EXEC, finish_report(r(1), RunStatus::Failed))
        .events();
    assert!(matches!(&events[0], Event::RunFinished(e) if e.status == RunStatus::Failed));
}
