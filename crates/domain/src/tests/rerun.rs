//! `start_run` with a selection: `rerun_of` + `only: "failed"` runs the failures of an earlier
//! run's last attempt; `tests` runs tests by id; both are resolved into JUnit names that
//! `run_requested` records.

use crate::evolve_compact;
use crate::quarantine::test_id;
use crate::testing::*;
use crate::{Lab, decide};
use runledger_types::command::{RerunOnly, SelectedTest, StartRun, TestOutcome, TestResult};
use runledger_types::event::{RunAssigned, RunFinished, RunQueued, RunRequested, RunTestsReported};
use runledger_types::{Command, Event, RejectionCode, RunStatus, TestId};

fn result(classname: &str, name: &str, status: TestOutcome) -> TestResult {
    TestResult {
        name: name.into(),
        classname: classname.into(),
        status,
        duration_ms: 3,
        message: None,
    }
}

fn selected(classname: &str, name: &str) -> SelectedTest {
    SelectedTest {
        classname: classname.into(),
        name: name.into(),
    }
}

fn id(classname: &str, name: &str) -> TestId {
    test_id(tc(1), &result(classname, name, TestOutcome::Passed))
}

fn part(run_id: runledger_types::RunId, part: u32, tests: Vec<TestResult>) -> Event {
    Event::RunTestsReported(RunTestsReported {
        run_id,
        part,
        tests,
    })
}

fn ended(status: RunStatus, tests: Vec<TestResult>) -> Event {
    Event::RunFinished(RunFinished {
        run_id: r(1),
        status,
        exit_code: Some(1),
        summary: None,
        reason: None,
        error_code: None,
        tests,
    })
}

/// r1 ran on v1: a part with `a` passed and `B.b` failed, then a final report with `c` in
/// error and `d` skipped; v1 is free again.
fn failed_r1() -> Vec<Event> {
    use TestOutcome::*;
    all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
        vec![part(
            r(1),
            1,
            vec![result("t.m", "a", Passed), result("t.m.B", "b", Failed)],
        )],
        vec![ended(
            RunStatus::Failed,
            vec![result("t.m", "c", Error), result("t.m", "d", Skipped)],
        )],
        vec![released(v(1), r(1))],
    ])
}

fn rerun(only: Option<RerunOnly>, tests: Vec<TestId>) -> Command {
    Command::StartRun(StartRun {
        rerun_of: Some(r(1)),
        only,
        tests,
        ..start(r(2))
    })
}

/// `run_requested` of r2 by MEMBER, rerunning r1 with `tests`, then its assignment to v1.
fn expected(tests: Vec<SelectedTest>) -> Vec<Event> {
    let requested = Event::RunRequested(RunRequested {
        rerun_of: Some(r(1)),
        tests,
        ..requested_r2()
    });
    let mut events = vec![requested];
    events.extend(assigned(r(2), v(1), m(1)));
    events
}

fn requested_r2() -> RunRequested {
    match requested(r(2), MEMBER) {
        Event::RunRequested(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn rerun_failed_selects_the_failures_of_the_parts_and_the_final_report() {
    let lab = given(&failed_r1())
        .when(MEMBER, rerun(Some(RerunOnly::Failed), Vec::new()))
        .then_expect(&expected(vec![
            selected("t.m.B", "b"),
            selected("t.m", "c"),
        ]));
    let run = lab.run(&r(2)).map(|run| (run.rerun_of, run.tests.len()));
    assert_eq!(run, Some((Some(r(1)), 2)), "the fold keeps the selection");
}

#[test]
fn rerun_failed_works_on_the_handlers_compact_fold_too() {
    let mut lab = Lab::new();
    for event in failed_r1() {
        evolve_compact(&mut lab, &event);
    }
    assert!(lab.run(&r(1)).is_none(), "r1 is forgotten");
    let events = decide(
        &lab,
        &actor_of(MEMBER),
        &rerun(Some(RerunOnly::Failed), Vec::new()),
        now(),
    );
    assert_eq!(
        events,
        Ok(expected(vec![selected("t.m.B", "b"), selected("t.m", "c")]))
    );
}

#[test]
fn rerun_failed_takes_the_last_attempt_only() {
    use TestOutcome::*;
    let retried = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
        vec![part(r(1), 1, vec![result("t.m", "first", Failed)])],
        vec![released(v(1), r(1))],
        vec![Event::RunQueued(RunQueued {
            run_id: r(1),
            reason: "retrying".into(),
        })],
        vec![
            Event::VenvLeased(runledger_types::event::VenvLeased {
                venv_id: v(1),
                run_id: r(1),
            }),
            Event::RunAssigned(RunAssigned {
                run_id: r(1),
                venv_id: Some(v(1)),
                machine_id: Some(m(1)),
                attempt: 2,
            }),
        ],
        vec![started(r(1), "e1")],
        vec![ended(
            RunStatus::Failed,
            vec![
                result("t.m", "second", Failed),
                result("t.m", "second", Failed),
            ],
        )],
        vec![released(v(1), r(1))],
    ]);
    given(&retried)
        .when(MEMBER, rerun(Some(RerunOnly::Failed), Vec::new()))
        .then_expect(&expected(vec![selected("t.m", "second")]));
}

#[test]
fn explicit_tests_resolve_by_id_with_or_without_rerun_of() {
    let ids = vec![id("t.m", "a"), id("t.m", "d"), id("t.m", "a")];
    given(&failed_r1())
        .when(MEMBER, rerun(None, ids.clone()))
        .then_expect(&expected(vec![selected("t.m", "a"), selected("t.m", "d")]));

    let alone = Command::StartRun(StartRun {
        tests: ids,
        ..start(r(2))
    });
    let (events, _) = given(&failed_r1()).when(MEMBER, alone).events();
    assert!(
        matches!(&events[0], Event::RunRequested(e)
            if e.rerun_of.is_none() && e.tests == vec![selected("t.m", "a"), selected("t.m", "d")]),
        "{events:?}"
    );
}

#[test]
fn a_test_no_run_of_the_test_case_reported_is_unknown() {
    let other_case = test_id(tc(2), &result("t.m", "a", TestOutcome::Passed));
    for ids in [vec![id("t.m", "never")], vec![other_case]] {
        given(&failed_r1())
            .when(MEMBER, rerun(None, ids))
            .then_reject(RejectionCode::UnknownTest);
    }
}

#[test]
fn a_rerun_of_an_unknown_or_unfinished_run_is_refused() {
    given(&world())
        .when(MEMBER, rerun(Some(RerunOnly::Failed), Vec::new()))
        .then_reject(RejectionCode::UnknownRun);
    let running = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
    ]);
    given(&running)
        .when(MEMBER, rerun(Some(RerunOnly::Failed), Vec::new()))
        .then_reject(RejectionCode::RunNotFinished);
}

#[test]
fn a_rerun_of_another_test_case_is_refused() {
    let mut history = failed_r1();
    history.push(test_case(tc(2)));
    let command = Command::StartRun(StartRun {
        test_case_id: tc(2),
        rerun_of: Some(r(1)),
        only: Some(RerunOnly::Failed),
        ..start(r(2))
    });
    given(&history)
        .when(MEMBER, command)
        .then_reject(RejectionCode::RerunTestCaseMismatch);
}

#[test]
fn nothing_failed_nothing_to_rerun_but_a_plain_rerun_links() {
    let passed = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
        vec![ended(
            RunStatus::Passed,
            vec![result("t.m", "a", TestOutcome::Passed)],
        )],
        vec![released(v(1), r(1))],
    ]);
    given(&passed)
        .when(MEMBER, rerun(Some(RerunOnly::Failed), Vec::new()))
        .then_reject(RejectionCode::NothingToRerun);
    given(&passed)
        .when(MEMBER, rerun(None, Vec::new()))
        .then_expect(&expected(Vec::new()));
}

/// r1 failed `count` tests with long names (about 80 bytes each as `classname::name`).
fn failed_r1_with_many_failures(count: usize) -> Vec<Event> {
    let failures: Vec<TestResult> = (0..count)
        .map(|i| {
            result(
                "tests.test_a_module_with_a_long_name",
                &format!("test_a_rather_descriptive_name_{i:05}"),
                TestOutcome::Failed,
            )
        })
        .collect();
    all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
        vec![ended(RunStatus::Failed, failures)],
        vec![released(v(1), r(1))],
    ])
}

#[test]
fn a_selection_too_large_for_runledger_tests_is_refused_when_asked_for() {
    // 1,000 failures take about 73 KB: rerun.
    let (events, _) = given(&failed_r1_with_many_failures(1_000))
        .when(MEMBER, rerun(Some(RerunOnly::Failed), Vec::new()))
        .events();
    assert!(matches!(&events[0], Event::RunRequested(e) if e.tests.len() == 1_000));
    // 1,500 take about 110 KB, more than RUNLEDGER_TESTS carries: refused, nothing queued.
    given(&failed_r1_with_many_failures(1_500))
        .when(MEMBER, rerun(Some(RerunOnly::Failed), Vec::new()))
        .then_reject(RejectionCode::SelectionTooLarge);
    // The same tests named by id.
    let ids: Vec<TestId> = (0..1_500)
        .map(|i| {
            id(
                "tests.test_a_module_with_a_long_name",
                &format!("test_a_rather_descriptive_name_{i:05}"),
            )
        })
        .collect();
    given(&failed_r1_with_many_failures(1_500))
        .when(MEMBER, rerun(None, ids))
        .then_reject(RejectionCode::SelectionTooLarge);
}
