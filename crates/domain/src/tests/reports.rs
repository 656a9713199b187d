//! `report_run_started`, `report_run_output`, `report_run_finished`.

use crate::RunPhase;
use crate::testing::*;
use runledger_types::command::{
    OutputStream, ReportRunFinished, ReportRunOutput, ReportRunStarted, TestOutcome, TestResult,
};
use runledger_types::event::{RunFinished, RunOutput};
use runledger_types::{Command, Event, RejectionCode, RunStatus, TestSummary};

fn assigned_r1() -> Vec<Event> {
    all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
    ])
}

fn running_r1() -> Vec<Event> {
    all([assigned_r1(), vec![started(r(1), "e1")]])
}

fn queued_r2() -> Vec<Event> {
    vec![requested(r(2), MEMBER), queued(r(2), "no_free_venv")]
}

fn start_report(n: u128) -> Command {
    Command::ReportRunStarted(ReportRunStarted { run_id: r(n) })
}

#[test]
fn run_started_once_by_one_executor() {
    let lab = given(&assigned_r1())
        .when(EXEC, start_report(1))
        .then_expect(&[started(r(1), "e1")]);
    assert_eq!(lab.run(&r(1)).map(|run| run.phase), Some(RunPhase::Running));
    given(&running_r1())
        .when(EXEC, start_report(1))
        .then_expect(&[]);
    let rejection = given(&running_r1())
        .when(EXEC2, start_report(1))
        .then_reject(RejectionCode::ExecutorMismatch);
    assert!(rejection.message.contains("e1"));
}

#[test]
fn run_started_needs_an_assigned_run() {
    let history = all([running_r1(), queued_r2()]);
    given(&history)
        .when(EXEC, start_report(2))
        .then_reject(RejectionCode::RunNotAssigned);
    given(&history)
        .when(EXEC, start_report(3))
        .then_reject(RejectionCode::UnknownRun);
    let done = all([
        running_r1(),
        vec![
            finished(r(1), RunStatus::Failed, None),
            released(v(1), r(1)),
        ],
    ]);
    given(&done)
        .when(EXEC, start_report(1))
        .then_reject(RejectionCode::RunFinished);
}

fn output(seq: u64) -> Command {
    Command::ReportRunOutput(ReportRunOutput {
        run_id: r(1),
        seq,
        stream: OutputStream::Stderr,
        text: format!("line {seq}\n"),
    })
}

fn output_event(seq: u64) -> Event {
    Event::RunOutput(RunOutput {
        run_id: r(1),
        seq,
        stream: OutputStream::Stderr,
        text: format!("line {seq}\n"),
    })
}

#[test]
fn output_is_recorded_once_per_seq_without_gaps() {
    let lab = given(&running_r1())
        .when(EXEC, output(1))
        .then_expect(&[output_event(1)]);
    assert_eq!(lab.run(&r(1)).map(|run| run.last_seq), Some(1));
    let history = all([running_r1(), vec![output_event(1)]]);
    given(&history).when(EXEC, output(1)).then_expect(&[]);
    let gap = given(&history)
        .when(EXEC, output(3))
        .then_reject(RejectionCode::OutputGap);
    assert!(gap.message.contains("before chunk 2"), "{}", gap.message);
    given(&history)
        .when(EXEC, output(2))
        .then_expect(&[output_event(2)]);
}

#[test]
fn output_needs_a_running_run_held_by_the_executor() {
    given(&running_r1())
        .when(EXEC2, output(1))
        .then_reject(RejectionCode::ExecutorMismatch);
    given(&assigned_r1())
        .when(EXEC, output(1))
        .then_reject(RejectionCode::RunNotRunning);
    let done = all([running_r1(), vec![finished(r(1), RunStatus::Passed, None)]]);
    given(&done)
        .when(EXEC, output(1))
        .then_reject(RejectionCode::RunFinished);
}

fn finish_report(status: RunStatus) -> ReportRunFinished {
    ReportRunFinished {
        run_id: r(1),
        status,
        exit_code: None,
        summary: None,
        reason: None,
        error_code: None,
        tests: Vec::new(),
    }
}

#[test]
fn run_finished_copies_the_report_and_releases_the_venv() {
    let report = ReportRunFinished {
        exit_code: Some(1),
        summary: Some(TestSummary {
            passed: 3,
            failed: 1,
            skipped: 0,
            errors: 0,
            quarantined_failed: 0,
        }),
        reason: Some("1 test failed".into()),
        tests: vec![TestResult {
            name: "test_a".into(),
            classname: "tests.test_mod".into(),
            status: TestOutcome::Failed,
            duration_ms: 12,
            message: Some("assert 1 == 2".into()),
        }],
        ..finish_report(RunStatus::Failed)
    };
    let expected = Event::RunFinished(RunFinished {
        run_id: r(1),
        status: RunStatus::Failed,
        exit_code: report.exit_code,
        summary: report.summary,
        reason: report.reason.clone(),
        error_code: None,
        tests: report.tests.clone(),
    });
    let lab = given(&running_r1())
        .when(EXEC, Command::ReportRunFinished(report))
        .then_expect(&[expected, released(v(1), r(1))]);
    assert_eq!(
        lab.run(&r(1)).map(|run| run.phase),
        Some(RunPhase::Finished(RunStatus::Failed))
    );
    assert_eq!(
        lab.venv(&v(1)).map(|v| v.status),
        Some(crate::VenvStatus::Free)
    );
}

#[test]
fn an_assigned_run_may_be_finished_by_any_executor() {
    let report = ReportRunFinished {
        error_code: Some("ssh_connect".into()),
        ..finish_report(RunStatus::Error)
    };
    let (events, _) = given(&assigned_r1())
        .when(EXEC2, Command::ReportRunFinished(report))
        .events();
    assert_eq!(events.len(), 2);
}

#[test]
fn run_finished_checks_phase_and_executor() {
    let report = Command::ReportRunFinished(finish_report(RunStatus::Passed));
    given(&running_r1())
        .when(EXEC2, report.clone())
        .then_reject(RejectionCode::ExecutorMismatch);
    let done = all([
        running_r1(),
        vec![
            finished(r(1), RunStatus::Passed, None),
            released(v(1), r(1)),
        ],
    ]);
    given(&done)
        .when(EXEC, report)
        .then_reject(RejectionCode::RunFinished);
    let queued_only = all([
        base(),
        vec![requested(r(1), MEMBER), queued(r(1), "no_matching_machine")],
    ]);
    given(&queued_only)
        .when(
            EXEC,
            Command::ReportRunFinished(finish_report(RunStatus::Error)),
        )
        .then_reject(RejectionCode::RunNotAssigned);
}

#[test]
fn a_finished_run_hands_its_venv_to_the_oldest_queued_run() {
    let history = all([running_r1(), queued_r2()]);
    let mut expected = vec![
        finished(r(1), RunStatus::Passed, None),
        released(v(1), r(1)),
    ];
    expected.extend(assigned(r(2), v(1), m(1)));
    given(&history)
        .when(
            EXEC,
            Command::ReportRunFinished(finish_report(RunStatus::Passed)),
        )
        .then_expect(&expected);
}

fn tests_part(part: u32, names: &[&str]) -> Command {
    Command::ReportRunTests(runledger_types::command::ReportRunTests {
        run_id: r(1),
        part,
        tests: names
            .iter()
            .map(|name| runledger_types::command::TestResult {
                name: (*name).into(),
                classname: "suite".into(),
                status: runledger_types::command::TestOutcome::Passed,
                duration_ms: 1,
                message: None,
            })
            .collect(),
    })
}

#[test]
fn per_test_results_come_in_numbered_parts_from_the_runs_executor() {
    let (events, lab) = given(&running_r1())
        .when(EXEC, tests_part(1, &["a", "b"]))
        .events();
    assert!(
        matches!(&events[..], [Event::RunTestsReported(e)] if e.part == 1 && e.tests.len() == 2)
    );
    let mut history = running_r1();
    history.extend(events);
    // The same part again changes nothing; a skipped part is refused; another executor too.
    given(&history)
        .when(EXEC, tests_part(1, &["a"]))
        .then_expect(&[]);
    given(&history)
        .when(EXEC, tests_part(3, &["z"]))
        .then_reject(RejectionCode::OutputGap);
    given(&history)
        .when(EXEC2, tests_part(2, &["c"]))
        .then_reject(RejectionCode::ExecutorMismatch);
    given(&history).when(EXEC, tests_part(2, &["c"])).events();
    assert_eq!(lab.run(&r(1)).map(|run| run.tests_parts), Some(1));
    given(&assigned_r1())
        .when(EXEC, tests_part(1, &["a"]))
        .then_reject(RejectionCode::RunNotRunning);
}

#[test]
fn a_forgotten_finished_run_is_still_refused_as_finished() {
    let mut lab = crate::Lab::new();
    for event in running_r1() {
        crate::evolve_compact(&mut lab, &event);
    }
    let finish = Command::ReportRunFinished(finish_report(RunStatus::Passed));
    for event in apply(&mut lab, EXEC, &finish).expect("finished") {
        lab.forget_finished_run(match &event {
            Event::RunFinished(e) => e.run_id,
            _ => continue,
        });
    }
    // Only the id and the status are left.
    assert!(lab.run(&r(1)).is_none());
    assert_eq!(lab.forgotten_run(&r(1)), Some(RunStatus::Passed));
    let stream = runledger_types::StreamId::new(runledger_types::StreamType::Run, r(1));
    assert_eq!(lab.stream_version(&stream), 0);
    let cancel = Command::CancelRun(runledger_types::command::CancelRun {
        run_id: r(1),
        reason: None,
    });
    let refused = apply(&mut lab, ADMIN, &cancel).expect_err("finished");
    assert_eq!(refused.code, RejectionCode::RunFinished);
    assert!(refused.message.contains("passed"), "{}", refused.message);
    let again = apply(&mut lab, EXEC, &finish).expect_err("finished");
    assert_eq!(again.code, RejectionCode::RunFinished);
    let reused = apply(&mut lab, MEMBER, &Command::StartRun(start(r(1)))).expect_err("taken");
    assert_eq!(reused.code, RejectionCode::RunExists);
}
