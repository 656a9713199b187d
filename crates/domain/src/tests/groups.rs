//! `start_group`, `cancel_group`, a group's verdict when its last member ends, the suite a
//! group splits, and the fairness rule of the queue.

use crate::groups::member_run_id;
use crate::testing::*;
use crate::{Lab, RunPhase, evolve_compact};
use runledger_types::command::{
    CancelGroup, CancelRun, Matrix, ReportRunFinished, ReportRunStarted, SelectedTest, StartGroup,
    TestOutcome, TestResult,
};
use runledger_types::event::{GroupKind, GroupStarted, RunFinished, VenvProvisioned};
use runledger_types::{
    Command, EnvName, Event, GroupId, GroupStatus, PythonVersion, RejectionCode, RunId, RunStatus,
    TestSummary,
};
use std::collections::BTreeMap;
use uuid::Uuid;

fn g(n: u128) -> GroupId {
    GroupId(Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 | n,
    ))
}

fn result(name: &str, ms: u64) -> TestResult {
    TestResult {
        name: name.into(),
        classname: "tests.test_suite".into(),
        status: TestOutcome::Passed,
        duration_ms: ms,
        message: None,
    }
}

/// r1 ran the whole suite on v1 and passed: a 10 s, b and c 5 s, d 1 s. Venvs v2 and v3 are
/// free too.
fn suite_known() -> Vec<Event> {
    suite_known_with_venvs(3)
}

/// `suite_known()` with `venvs` free venvs (v1 first).
fn suite_known_with_venvs(venvs: u128) -> Vec<Event> {
    let tests = vec![
        result("a", 10_000),
        result("b", 5_000),
        result("c", 5_000),
        result("d", 1_000),
    ];
    let more: Vec<Event> = (2..=venvs).flat_map(|n| free_venv(v(n), m(1))).collect();
    all([world(), more, whole_run(tests)])
}

/// r1 ran the whole suite on v1 and passed with `tests`; v1 is free again.
fn whole_run(tests: Vec<TestResult>) -> Vec<Event> {
    all([
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
        vec![Event::RunFinished(RunFinished {
            run_id: r(1),
            status: RunStatus::Passed,
            exit_code: Some(0),
            summary: None,
            reason: None,
            error_code: None,
            tests,
        })],
        vec![released(v(1), r(1))],
    ])
}

fn shards(group_id: GroupId, n: u32) -> Command {
    Command::StartGroup(StartGroup {
        group_id,
        test_case_id: tc(1),
        shards: Some(n),
        matrix: None,
        machine_id: None,
        labels: Default::default(),
        env: Default::default(),
    })
}

fn names(tests: &[SelectedTest]) -> Vec<&str> {
    tests.iter().map(|t| t.name.as_str()).collect()
}

fn group_started(events: &[Event]) -> &GroupStarted {
    match &events[0] {
        Event::GroupStarted(e) => e,
        other => panic!("expected group_started first, got {other:?}"),
    }
}

/// Each member's tests as the decision's `group_tests_planned` parts give them, by shard.
fn planned(events: &[Event]) -> Vec<Vec<SelectedTest>> {
    let members = group_started(events).members.len();
    let mut tests = vec![Vec::new(); members];
    for event in events {
        if let Event::GroupTestsPlanned(part) = event {
            tests[part.shard as usize].extend(part.tests.iter().cloned());
        }
    }
    tests
}

/// Replays `events` the way a long-running handler keeps them.
fn fold(lab: &mut Lab, events: &[Event]) {
    for event in events {
        evolve_compact(lab, event);
    }
}

#[test]
fn a_sharded_group_splits_the_suite_by_past_durations_and_places_each_member() {
    let (events, lab) = given(&suite_known()).when(MEMBER, shards(g(1), 2)).events();
    let started = group_started(&events);
    assert_eq!(started.kind, GroupKind::Shards);
    assert_eq!(started.members.len(), 2);
    // The tests are recorded in parts after `group_started`, which holds the predictions.
    assert!(started.members.iter().all(|m| m.tests.is_empty()));
    let planned = planned(&events);
    assert_eq!(names(&planned[0]), ["a", "d"]);
    assert_eq!(started.members[0].predicted_ms, Some(11_000));
    assert_eq!(names(&planned[1]), ["b", "c"]);
    assert_eq!(started.members[1].predicted_ms, Some(10_000));
    let split = lab
        .group(&g(1))
        .and_then(|g| g.split.clone())
        .expect("split");
    assert_eq!(split.tests, planned);
    assert_eq!(started.ideal_ms, Some(10_500));
    for (shard, member) in started.members.iter().enumerate() {
        assert_eq!(member.run_id, member_run_id(g(1), shard as u32));
        let run = lab.run(&member.run_id).expect("member requested");
        assert_eq!(run.phase, RunPhase::Assigned);
        // A pytest shard's pytest reads its tests from the split: its run selects none.
        assert!(run.tests.is_empty());
        let membership = run.group.as_ref().expect("membership");
        assert_eq!(
            (membership.group_id, membership.shard),
            (g(1), shard as u32)
        );
    }
    let venvs: Vec<_> = started
        .members
        .iter()
        .filter_map(|m| lab.run(&m.run_id).and_then(|run| run.venv_id))
        .collect();
    assert_eq!(venvs, [v(1), v(2)]);
}

/// `events` with the test case's command replaced by `command`.
fn with_command(events: Vec<Event>, command: &str) -> Vec<Event> {
    events
        .into_iter()
        .map(|event| match event {
            Event::TestCaseDefined(mut e) => {
                e.command = Some(runledger_types::Text::parse(command).unwrap());
                Event::TestCaseDefined(e)
            }
            other => other,
        })
        .collect()
}

#[test]
fn a_suite_never_run_whole_splits_at_collection_only_under_pytest() {
    // pytest: every shard is kept; each places the tests it was not given at collection.
    let (events, _) = given(&world()).when(MEMBER, shards(g(1), 2)).events();
    let started = group_started(&events);
    assert_eq!(started.members.len(), 2);
    assert!(started.members.iter().all(|m| m.tests.is_empty()));
    assert_eq!(started.unknown_ms, Some(1_000));
    // Any other command cannot be split without knowing its tests.
    given(&with_command(world(), "make test"))
        .when(MEMBER, shards(g(1), 2))
        .then_reject(RejectionCode::NoTestHistory);
}

#[test]
fn a_shard_left_without_tests_is_dropped_unless_pytest_may_give_it_some() {
    let (events, lab) = given(&with_command(suite_known(), "make test"))
        .when(MEMBER, shards(g(1), 8))
        .events();
    let started = group_started(&events);
    assert_eq!(started.members.len(), 4, "four tests, four shards");
    let planned = planned(&events);
    assert!(planned.iter().all(|tests| tests.len() == 1));
    assert_eq!(started.unknown_ms, None);
    // Other commands' shards carry their tests, which they are given in `RUNLEDGER_TESTS`.
    for (member, tests) in started.members.iter().zip(&planned) {
        assert_eq!(&lab.run(&member.run_id).expect("requested").tests, tests);
    }
    let (events, _) = given(&suite_known()).when(MEMBER, shards(g(1), 8)).events();
    let started = group_started(&events);
    assert_eq!(started.members.len(), 8);
    assert_eq!(
        started.unknown_ms,
        Some(5_000),
        "the median of 10, 5, 5 and 1 s"
    );
    given(&all([suite_known(), events]))
        .when(MEMBER, shards(g(1), 2))
        .then_reject(RejectionCode::GroupExists);
}

#[test]
fn shards_of_another_command_must_fit_runledger_tests() {
    // 3,000 tests of 77 bytes as `classname::name`: 234 KB in all.
    let tests: Vec<TestResult> = (0..3_000)
        .map(|i| {
            result(
                &format!("test_a_rather_descriptive_and_long_name_{i:05}_of_the_suite"),
                5,
            )
        })
        .collect();
    let history = with_command(all([world(), whole_run(tests)]), "make test");
    // Two shards of 117 KB each would not be given their tests: refused, nothing starts.
    given(&history)
        .when(MEMBER, shards(g(1), 2))
        .then_reject(RejectionCode::SelectionTooLarge);
    // Three of 78 KB each are.
    let (events, _) = given(&history).when(MEMBER, shards(g(1), 3)).events();
    assert_eq!(group_started(&events).members.len(), 3);
    // pytest shards read their tests from the split: two are fine.
    let pytest = with_command(history, "pytest -q");
    let (events, _) = given(&pytest).when(MEMBER, shards(g(1), 2)).events();
    assert_eq!(group_started(&events).members.len(), 2);
}

#[test]
fn a_matrix_runs_the_whole_suite_once_per_combination_with_its_env_and_python() {
    let mut history = all([
        base(),
        vec![machine(m(1), MEMBER, &["linux"])],
        free_venv(v(1), m(1)),
        free_venv(v(2), m(1)),
    ]);
    history.push(Event::VenvProvisioned(VenvProvisioned {
        venv_id: v(1),
        python_version: Some("3.11.7".into()),
    }));
    history.push(Event::VenvProvisioned(VenvProvisioned {
        venv_id: v(2),
        python_version: Some("3.12.1".into()),
    }));
    let env = |value: &str| BTreeMap::from([(EnvName::parse("X").unwrap(), value.to_owned())]);
    let matrix = Matrix {
        labels: vec![],
        python: vec![
            PythonVersion::parse("3.12").unwrap(),
            PythonVersion::parse("3.11").unwrap(),
        ],
        env: vec![env("1"), env("2")],
    };
    let command = Command::StartGroup(StartGroup {
        group_id: g(1),
        test_case_id: tc(1),
        shards: None,
        matrix: Some(matrix),
        machine_id: None,
        labels: Default::default(),
        env: Default::default(),
    });
    let (events, lab) = given(&history).when(MEMBER, command).events();
    let started = group_started(&events);
    assert_eq!(started.kind, GroupKind::Matrix);
    assert_eq!(started.members.len(), 4);
    let member = |shard: u32| lab.run(&member_run_id(g(1), shard)).expect("member");
    // 3.12 × X=1 takes v2 (3.12.1); 3.11 × X=1 takes v1; the other two wait for their python.
    assert_eq!(member(0).venv_id, Some(v(2)));
    assert_eq!(member(0).env[&EnvName::parse("X").unwrap()], "1");
    assert_eq!(member(1).phase, RunPhase::Queued);
    assert_eq!(member(1).env[&EnvName::parse("X").unwrap()], "2");
    assert_eq!(member(2).venv_id, Some(v(1)));
    assert!(
        member(0).tests.is_empty(),
        "a matrix member runs the whole suite"
    );
    let combination = member(3).group.as_ref().and_then(|g| g.combination.clone());
    assert_eq!(
        combination.and_then(|c| c.python).map(String::from),
        Some("3.11".to_owned())
    );
}

#[test]
fn a_matrix_env_must_be_one_the_test_case_lets_runs_set() {
    let env = BTreeMap::from([(EnvName::parse("NOT_ALLOWED").unwrap(), "1".to_owned())]);
    let command = Command::StartGroup(StartGroup {
        group_id: g(1),
        test_case_id: tc(1),
        shards: None,
        matrix: Some(Matrix {
            env: vec![env],
            ..Matrix::default()
        }),
        machine_id: None,
        labels: Default::default(),
        env: Default::default(),
    });
    given(&world())
        .when(MEMBER, command)
        .then_reject(RejectionCode::EnvNotOverridable);
}

/// The group of `suite_known()` with two shards, both assigned, then started by e1.
fn running_group() -> (Vec<Event>, RunId, RunId) {
    let (events, _) = given(&suite_known()).when(MEMBER, shards(g(1), 2)).events();
    let (first, second) = (member_run_id(g(1), 0), member_run_id(g(1), 1));
    let history = all([
        suite_known(),
        events,
        vec![started(first, "e1"), started(second, "e1")],
    ]);
    (history, first, second)
}

fn report_end(run_id: RunId, status: RunStatus, passed: u32, failed: u32) -> Command {
    Command::ReportRunFinished(ReportRunFinished {
        run_id,
        status,
        exit_code: Some(0),
        summary: Some(TestSummary {
            passed,
            failed,
            ..TestSummary::default()
        }),
        reason: None,
        error_code: None,
        tests: Vec::new(),
    })
}

#[test]
fn the_last_member_to_end_ends_the_group_with_its_verdict_and_merged_summary() {
    let (history, first, second) = running_group();
    let mut lab = Lab::new();
    fold(&mut lab, &history);
    let events = apply(&mut lab, EXEC, &report_end(first, RunStatus::Passed, 2, 0)).unwrap();
    assert!(
        !events.iter().any(|e| matches!(e, Event::GroupFinished(_))),
        "one member still runs"
    );
    let events = apply(&mut lab, EXEC, &report_end(second, RunStatus::Failed, 1, 1)).unwrap();
    let Some(Event::GroupFinished(finished)) = events.last() else {
        panic!("expected group_finished last, got {events:#?}");
    };
    assert_eq!(finished.status, GroupStatus::Failed);
    assert_eq!(
        (finished.summary.passed, finished.summary.failed),
        (3, 1),
        "the members' summaries add up"
    );
    assert_eq!(lab.finished_group(&g(1)), Some(GroupStatus::Failed));
    assert!(lab.group(&g(1)).is_none());
}

#[test]
fn cancel_group_ends_every_member_and_the_group() {
    let (history, first, second) = running_group();
    let queued_third = all([
        history,
        vec![requested(r(9), OTHER), queued(r(9), "no_free_venv")],
    ]);
    let cancel = Command::CancelGroup(CancelGroup {
        group_id: g(1),
        reason: Some("wrong branch".into()),
    });
    given(&queued_third.clone())
        .when(OTHER, cancel.clone())
        .then_reject(RejectionCode::Forbidden);
    let (events, lab) = given(&queued_third).when(MEMBER, cancel.clone()).events();
    assert!(matches!(events[0], Event::GroupCancelRequested(_)));
    // Both members run: their executors are asked to stop them.
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::RunCancelRequested(_)))
            .count(),
        2
    );
    let mut lab = lab;
    for run_id in [first, second] {
        apply(
            &mut lab,
            EXEC,
            &report_end(run_id, RunStatus::Cancelled, 0, 0),
        )
        .unwrap();
    }
    assert_eq!(lab.finished_group(&g(1)), Some(GroupStatus::Cancelled));
    let rejection = decide_on(&lab, MEMBER, &cancel).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::GroupFinished);
}

#[test]
fn cancelling_a_waiting_group_ends_it_at_once_and_frees_no_venv_to_its_own_members() {
    // One venv: shard 0 is assigned, shard 1 waits.
    let history = suite_known_with_venvs(1);
    let (events, lab) = given(&history).when(MEMBER, shards(g(1), 2)).events();
    let second = member_run_id(g(1), 1);
    assert_eq!(lab.run(&second).map(|r| r.phase), Some(RunPhase::Queued));
    let cancel = Command::CancelGroup(CancelGroup {
        group_id: g(1),
        reason: None,
    });
    let (cancelled, lab) = given(&all([history, events])).when(MEMBER, cancel).events();
    assert!(
        !cancelled.iter().any(|e| matches!(e, Event::RunAssigned(_))),
        "the freed venv goes to no member: {cancelled:#?}"
    );
    assert!(matches!(
        cancelled.last(),
        Some(Event::GroupFinished(f)) if f.status == GroupStatus::Cancelled
    ));
    assert_eq!(lab.free_venvs().count(), 1);
}

#[test]
fn a_run_queued_after_a_group_waits_for_at_most_one_of_its_members() {
    // Two venvs, four shards: two assigned, two waiting; then another user's run waits.
    let mut lab = Lab::new();
    fold(&mut lab, &suite_known_with_venvs(2));
    apply(&mut lab, MEMBER, &shards(g(2), 4)).unwrap();
    let member = |n: u32| member_run_id(g(2), n);
    assert_eq!(lab.run(&member(2)).map(|r| r.phase), Some(RunPhase::Queued));
    apply(&mut lab, OTHER, &Command::StartRun(start(r(9)))).unwrap();
    assert_eq!(lab.run(&r(9)).map(|r| r.phase), Some(RunPhase::Queued));

    // Shard 0 ends: its venv goes to shard 2, which waited first; shard 3 goes behind r9.
    apply(&mut lab, EXEC, &start_report(member(0))).unwrap();
    apply(
        &mut lab,
        EXEC,
        &report_end(member(0), RunStatus::Passed, 1, 0),
    )
    .unwrap();
    assert_eq!(
        lab.run(&member(2)).map(|r| r.phase),
        Some(RunPhase::Assigned)
    );
    assert_eq!(lab.queued_runs().collect::<Vec<_>>(), [r(9), member(3)]);

    // Shard 1 ends: r9 gets the venv before the group's last member.
    apply(&mut lab, EXEC, &start_report(member(1))).unwrap();
    apply(
        &mut lab,
        EXEC,
        &report_end(member(1), RunStatus::Passed, 1, 0),
    )
    .unwrap();
    assert_eq!(lab.run(&r(9)).map(|r| r.phase), Some(RunPhase::Assigned));
    assert_eq!(lab.queued_runs().collect::<Vec<_>>(), [member(3)]);
}

#[test]
fn a_cancelled_member_makes_the_group_cancelled() {
    let (history, first, second) = running_group();
    let mut lab = Lab::new();
    fold(&mut lab, &history);
    apply(
        &mut lab,
        MEMBER,
        &Command::CancelRun(CancelRun {
            run_id: first,
            reason: None,
        }),
    )
    .unwrap();
    apply(
        &mut lab,
        EXEC,
        &report_end(first, RunStatus::Cancelled, 0, 0),
    )
    .unwrap();
    let events = apply(&mut lab, EXEC, &report_end(second, RunStatus::Passed, 2, 0)).unwrap();
    assert!(matches!(
        events.last(),
        Some(Event::GroupFinished(f)) if f.status == GroupStatus::Cancelled
    ));
}

#[test]
fn a_sharded_group_that_ends_with_verdicts_tells_the_suite() {
    let (history, first, second) = running_group();
    let mut lab = Lab::new();
    fold(&mut lab, &history);
    let mut end = |run_id, tests: Vec<TestResult>| {
        let Command::ReportRunFinished(mut report) = report_end(run_id, RunStatus::Passed, 1, 0)
        else {
            unreachable!()
        };
        report.tests = tests;
        apply(&mut lab, EXEC, &Command::ReportRunFinished(report)).unwrap();
    };
    // The suite lost `d` and gained `e`.
    end(first, vec![result("a", 9_000)]);
    end(
        second,
        vec![result("b", 5_000), result("c", 5_000), result("e", 100)],
    );
    assert_eq!(lab.finished_group(&g(1)), Some(GroupStatus::Passed));
    let suite = lab.suite(&tc(1)).expect("suite");
    let mut names: Vec<_> = suite
        .iter()
        .filter_map(|id| lab.reported_test(id))
        .map(|t| t.test.name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c", "e"]);
}

fn start_report(run_id: RunId) -> Command {
    Command::ReportRunStarted(ReportRunStarted { run_id })
}

fn decide_on(
    lab: &Lab,
    actor: &str,
    command: &Command,
) -> Result<Vec<Event>, runledger_types::Rejection> {
    crate::decide(lab, &actor_of(actor), command, now())
}

#[test]
fn a_test_is_expected_to_take_the_median_of_its_latest_durations() {
    use crate::state::{RECENT_DURATIONS, RecentDurations};
    let mut recent = RecentDurations::default();
    assert_eq!(recent.p50_ms(), None);
    for ms in [5, 1, 9] {
        recent.push(ms);
    }
    assert_eq!(recent.p50_ms(), Some(5));
    // Only the latest are kept: a test that got slow is expected to stay slow.
    for _ in 0..RECENT_DURATIONS {
        recent.push(700);
    }
    assert_eq!(recent.p50_ms(), Some(700));
}
