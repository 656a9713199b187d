//! How quarantine weighs on a run's end: a `failed` report whose only failures are of tests
//! quarantined at the decision is recorded `passed`, with `quarantined_failed` in its summary.

use super::quarantine::{quarantine, quarantined};
use crate::RunPhase;
use crate::quarantine::test_id;
use crate::testing::*;
use runledger_types::command::{
    ReleaseTest, ReportRunFinished, ReportRunTests, TestOutcome, TestResult,
};
use runledger_types::event::{RunFinished, TestReleased};
use runledger_types::{Command, Event, RunStatus, TestId, TestSummary};

fn result(name: &str, status: TestOutcome) -> TestResult {
    TestResult {
        name: name.into(),
        classname: "tests.test_api".into(),
        status,
        duration_ms: 5,
        message: None,
    }
}

/// The id of test `name` of `tc(1)`.
fn id(name: &str) -> TestId {
    test_id(tc(1), &result(name, TestOutcome::Passed))
}

fn summary_of(tests: &[TestResult]) -> TestSummary {
    let count = |outcome| u32::try_from(tests.iter().filter(|t| t.status == outcome).count());
    TestSummary {
        passed: count(TestOutcome::Passed).unwrap_or(0),
        failed: count(TestOutcome::Failed).unwrap_or(0),
        skipped: count(TestOutcome::Skipped).unwrap_or(0),
        errors: count(TestOutcome::Error).unwrap_or(0),
        quarantined_failed: 0,
    }
}

/// The executor's `failed` report of r1 with `tests` and their summary.
fn failed(tests: Vec<TestResult>) -> ReportRunFinished {
    ReportRunFinished {
        run_id: r(1),
        status: RunStatus::Failed,
        exit_code: Some(1),
        summary: Some(summary_of(&tests)),
        reason: Some("exit code 1".into()),
        error_code: None,
        tests,
    }
}

/// r1 running on v1 by e1, with `flaky` quarantined (no end) and `slow` until `at(60)`.
fn running() -> Vec<Event> {
    all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
        vec![quarantined(id("flaky"), None, MEMBER)],
        vec![quarantined(id("slow"), Some(at(60)), ADMIN)],
    ])
}

/// Decides `report` at `time` on `history`: the `run_finished` recorded.
fn recorded(history: &[Event], time: i64, report: ReportRunFinished) -> RunFinished {
    let (events, lab) = given(history)
        .when_at(at(time), EXEC, Command::ReportRunFinished(report))
        .events();
    let status = lab.run(&r(1)).map(|run| run.phase);
    match events.first() {
        Some(Event::RunFinished(e)) => {
            assert_eq!(
                status,
                Some(RunPhase::Finished(e.status)),
                "the fold agrees"
            );
            e.clone()
        }
        other => panic!("expected run_finished, got {other:?}"),
    }
}

fn quarantined_failed(finished: &RunFinished) -> Option<u32> {
    finished.summary.map(|summary| summary.quarantined_failed)
}

#[test]
fn a_run_whose_only_failure_is_quarantined_passes_and_keeps_its_results() {
    let report = failed(vec![
        result("ok", TestOutcome::Passed),
        result("flaky", TestOutcome::Failed),
    ]);
    let finished = recorded(&running(), 0, report.clone());
    assert_eq!(finished.status, RunStatus::Passed);
    assert_eq!(
        finished.tests, report.tests,
        "the failure is still recorded"
    );
    assert_eq!(finished.exit_code, Some(1));
    let summary = finished.summary.expect("summary");
    assert_eq!((summary.failed, summary.quarantined_failed), (1, 1));
    let reason = finished.reason.unwrap_or_default();
    assert!(
        reason.contains("quarantined") && reason.contains("exit code 1"),
        "{reason}"
    );
}

#[test]
fn a_failure_that_is_not_quarantined_fails_the_run_and_counts_the_others() {
    let report = failed(vec![
        result("flaky", TestOutcome::Failed),
        result("slow", TestOutcome::Error),
        result("real", TestOutcome::Failed),
    ]);
    let finished = recorded(&running(), 0, report);
    assert_eq!(finished.status, RunStatus::Failed);
    assert_eq!(finished.reason.as_deref(), Some("exit code 1"));
    assert_eq!(quarantined_failed(&finished), Some(2));
}

#[test]
fn a_released_test_fails_the_run_again() {
    let mut lab = given(&running()).lab;
    let release = Command::ReleaseTest(ReleaseTest {
        test_id: id("flaky"),
    });
    let events = apply(&mut lab, MEMBER, &release).expect("released");
    assert_eq!(
        events,
        vec![Event::TestReleased(TestReleased {
            test_id: id("flaky"),
            lapsed: false
        })]
    );
    let history = all([running(), events]);
    let finished = recorded(
        &history,
        0,
        failed(vec![result("flaky", TestOutcome::Failed)]),
    );
    assert_eq!(finished.status, RunStatus::Failed);
    assert_eq!(quarantined_failed(&finished), Some(0));
}

#[test]
fn a_quarantine_whose_end_passed_excuses_nothing_even_before_it_lapses() {
    let report = failed(vec![result("slow", TestOutcome::Failed)]);
    assert_eq!(
        recorded(&running(), 59, report.clone()).status,
        RunStatus::Passed
    );
    let finished = recorded(&running(), 60, report);
    assert_eq!(finished.status, RunStatus::Failed);
    assert_eq!(quarantined_failed(&finished), Some(0));
}

#[test]
fn failures_reported_in_parts_are_weighed_too() {
    let part = |tests| {
        Command::ReportRunTests(ReportRunTests {
            run_id: r(1),
            part: 1,
            tests,
        })
    };
    let both = vec![
        result("flaky", TestOutcome::Failed),
        result("real", TestOutcome::Failed),
    ];
    // The final report carries no tests; its summary counts the part's.
    let end = |tests: &[TestResult]| ReportRunFinished {
        tests: Vec::new(),
        summary: Some(summary_of(tests)),
        ..failed(Vec::new())
    };
    let excused = vec![result("flaky", TestOutcome::Failed)];
    let (events, _) = given(&running()).when(EXEC, part(excused.clone())).events();
    let history = all([running(), events]);
    assert_eq!(
        recorded(&history, 0, end(&excused)).status,
        RunStatus::Passed
    );
    let (events, _) = given(&running()).when(EXEC, part(both.clone())).events();
    let history = all([running(), events]);
    let finished = recorded(&history, 0, end(&both));
    assert_eq!(finished.status, RunStatus::Failed);
    assert_eq!(quarantined_failed(&finished), Some(1));
}

#[test]
fn failures_the_results_do_not_name_keep_the_run_failed() {
    // The summary counts two failures, the results show one (a report cut short).
    let mut report = failed(vec![result("flaky", TestOutcome::Failed)]);
    report.summary = report.summary.map(|s| TestSummary { failed: 2, ..s });
    assert_eq!(
        recorded(&running(), 0, report.clone()).status,
        RunStatus::Failed
    );
    // No summary at all: nothing proves the failure is only the quarantined test's.
    report.summary = None;
    assert_eq!(recorded(&running(), 0, report).status, RunStatus::Failed);
    // A failed run without any failing result (a crash) is not excused either.
    let crash = failed(vec![result("flaky", TestOutcome::Passed)]);
    assert_eq!(recorded(&running(), 0, crash).status, RunStatus::Failed);
}

#[test]
fn quarantine_changes_nothing_for_errors_timeouts_and_cancellations() {
    for status in [RunStatus::Error, RunStatus::TimedOut, RunStatus::Cancelled] {
        let report = ReportRunFinished {
            status,
            ..failed(vec![result("flaky", TestOutcome::Failed)])
        };
        let finished = recorded(&running(), 0, report);
        assert_eq!(finished.status, status);
        assert_eq!(quarantined_failed(&finished), Some(0));
    }
}

#[test]
fn only_the_handler_counts_quarantined_failures() {
    let mut report = failed(vec![result("real", TestOutcome::Failed)]);
    report.summary = report.summary.map(|s| TestSummary {
        quarantined_failed: 1,
        ..s
    });
    let finished = recorded(&running(), 0, report);
    assert_eq!(finished.status, RunStatus::Failed);
    assert_eq!(quarantined_failed(&finished), Some(0));
}

#[test]
fn a_test_of_another_test_case_is_another_test() {
    let other = test_id(tc(2), &result("flaky", TestOutcome::Failed));
    assert_ne!(other, id("flaky"));
    let history = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
    ]);
    let (events, _) = given(&history)
        .when(MEMBER, quarantine(other, None))
        .events();
    let history = all([history, events]);
    let finished = recorded(
        &history,
        0,
        failed(vec![result("flaky", TestOutcome::Failed)]),
    );
    assert_eq!(finished.status, RunStatus::Failed);
}
