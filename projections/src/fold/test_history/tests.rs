//! Given run events with per-test results, expect test rows and results.

use super::TestsFold;
use crate::fold::Fact;
use chrono::{TimeZone, Utc};
use runledger_insights::TestKey;
use runledger_types::command::TestOutcome;
use runledger_types::{Event, TestCaseId};
use serde_json::json;
use uuid::Uuid;

fn facts(events: &[(&str, serde_json::Value)]) -> Vec<Fact> {
    events
        .iter()
        .enumerate()
        .map(|(i, (kind, data))| Fact {
            position: i as i64 + 1,
            recorded_at: Utc
                .with_ymd_and_hms(2026, 12, 1, 12, 0, i as u32)
                .single()
                .unwrap_or_default(),
            actor: "ada".into(),
            event: Event::from_parts(kind, data.clone()).unwrap(),
        })
        .collect()
}

#[test]
fn results_of_every_attempt_are_kept_and_a_test_fixed_by_a_retry_is_flaky() {
    let (machine, venv, run, case) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let test = |name: &str, status: &str, ms: u64| {
        json!({"classname": "suite.mod", "name": name, "status": status, "duration_ms": ms,
               "message": (status == "failed").then_some("assert 1 == 2")})
    };
    let events = facts(&[
        (
            "machine_registered",
            json!({"machine_id": machine, "name": "lab-1", "host": "10.0.0.1", "port": 22,
                   "os": "linux", "username": "t", "owner": "ada", "labels": []}),
        ),
        (
            "run_requested",
            json!({"run_id": run, "test_case_id": case, "user": "mia", "env": {"MODE": "fast"}}),
        ),
        (
            "run_assigned",
            json!({"run_id": run, "venv_id": venv, "machine_id": machine, "attempt": 1}),
        ),
        (
            "run_tests_reported",
            json!({"run_id": run, "part": 1,
                   "tests": [test("steady", "passed", 120), test("wobbly", "failed", 300)]}),
        ),
        (
            "run_queued",
            json!({"run_id": run, "reason": "retrying: attempt 1 of 2 ended in error"}),
        ),
        (
            "run_assigned",
            json!({"run_id": run, "venv_id": venv, "machine_id": machine, "attempt": 2}),
        ),
        (
            "run_finished",
            json!({"run_id": run, "status": "passed",
                   "tests": [test("steady", "passed", 100), test("wobbly", "passed", 280)]}),
        ),
    ]);
    let mut fold = TestsFold::default();
    for fact in &events {
        fold.apply(fact);
    }
    let id = |name: &str| TestKey::new(TestCaseId(case), "suite.mod", name).id().0;
    let reports = fold.pending_reports().to_vec();
    let attempts: Vec<(i32, i32, TestOutcome)> = reports
        .iter()
        .flat_map(|r| {
            r.tests
                .iter()
                .zip(&r.statuses)
                .map(|(number, status)| (*number, r.attempt, *status))
        })
        .collect();
    // Tests are numbered in the order the log first names them.
    assert_eq!(
        attempts,
        [
            (1, 1, TestOutcome::Passed),
            (2, 1, TestOutcome::Failed),
            (1, 2, TestOutcome::Passed),
            (2, 2, TestOutcome::Passed),
        ]
    );
    assert_eq!(fold.test(id("wobbly")).map(|t| t.number), Some(2));
    assert!(reports.iter().all(|r| r.machine_id == Some(machine)));
    // A test's history chunk: its results newest first, each placed by its report.
    let chunks = fold.history_chunks();
    let wobbly = chunks.iter().find(|c| c.test_id == id("wobbly")).unwrap();
    assert_eq!(wobbly.statuses, [TestOutcome::Passed, TestOutcome::Failed]);
    assert_eq!(wobbly.durations, [280, 300]);
    assert_eq!(wobbly.messages, [None, Some("assert 1 == 2".to_owned())]);
    assert_eq!(
        (wobbly.from_position, wobbly.from_ordinal),
        (reports[0].position, 1)
    );
    assert_eq!(wobbly.positions, [reports[1].position, reports[0].position]);

    let steady = fold.test(id("steady")).unwrap();
    assert_eq!((steady.runs, steady.passed), (2, 2));
    assert!(!steady.flaky);
    assert_eq!(steady.pass_rate, Some(1.0));

    let wobbly = fold.test(id("wobbly")).unwrap();
    assert_eq!((wobbly.runs, wobbly.passed, wobbly.failed), (2, 1, 1));
    assert_eq!(wobbly.last_status, "passed");
    assert_eq!(wobbly.last_changed_at, events[6].recorded_at);
    assert_eq!(wobbly.first_seen_at, events[3].recorded_at);
    assert_eq!(
        wobbly.last_failure_message.as_deref(),
        Some("assert 1 == 2")
    );
    assert_eq!(wobbly.last_failure_run_id, Some(run));
    assert!(
        wobbly.flaky,
        "failed, then passed on a retry of the same run"
    );
    assert_eq!(wobbly.flips.len(), 1);
    assert!(wobbly.flips[0].same_run);
    assert_eq!(wobbly.duration_p50_ms, Some(280));
}

#[test]
fn results_of_a_run_the_model_never_saw_requested_are_skipped() {
    let run = Uuid::now_v7();
    let events = facts(&[(
        "run_tests_reported",
        json!({"run_id": run, "part": 1,
               "tests": [{"classname": "c", "name": "n", "status": "passed", "duration_ms": 1}]}),
    )]);
    let mut fold = TestsFold::default();
    fold.apply(&events[0]);
    assert!(fold.pending_reports().is_empty());
    assert!(fold.history_chunks().is_empty());
}

#[test]
fn a_test_that_failed_in_a_run_and_passed_in_its_rerun_is_flaky() {
    let (machine, venv, case) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (first, rerun) = (Uuid::now_v7(), Uuid::now_v7());
    let result = |status: &str| json!([{"classname": "suite.mod", "name": "wobbly", "status": status, "duration_ms": 5}]);
    let events = facts(&[
        (
            "machine_registered",
            json!({"machine_id": machine, "name": "lab-1", "host": "10.0.0.1", "port": 22,
                   "os": "linux", "username": "t", "owner": "ada", "labels": []}),
        ),
        (
            "run_requested",
            json!({"run_id": first, "test_case_id": case, "user": "mia"}),
        ),
        (
            "run_assigned",
            json!({"run_id": first, "venv_id": venv, "machine_id": machine, "attempt": 1}),
        ),
        (
            "run_finished",
            json!({"run_id": first, "status": "failed", "tests": result("failed")}),
        ),
        (
            "run_requested",
            json!({"run_id": rerun, "test_case_id": case, "user": "mia", "rerun_of": first,
                   "tests": [{"classname": "suite.mod", "name": "wobbly"}]}),
        ),
        (
            "run_assigned",
            json!({"run_id": rerun, "venv_id": venv, "machine_id": machine, "attempt": 1}),
        ),
        (
            "run_finished",
            json!({"run_id": rerun, "status": "passed", "tests": result("passed")}),
        ),
    ]);
    let mut fold = TestsFold::default();
    for fact in &events {
        fold.apply(fact);
    }
    let id = TestKey::new(TestCaseId(case), "suite.mod", "wobbly").id().0;
    let wobbly = fold.test(id).unwrap();
    let rerun_of: Vec<Option<Uuid>> = wobbly.recent.iter().map(|r| r.rerun_of).collect();
    assert!(rerun_of.contains(&Some(first)), "{:?}", wobbly.recent);
    assert!(wobbly.flaky, "failed in a run, passed in its rerun");
    assert_eq!(wobbly.flips.len(), 1);
    assert!(wobbly.flips[0].same_run);
}

#[test]
fn test_rows_encode_by_hand_as_the_generic_encoder_does() {
    let (run, case) = (Uuid::now_v7(), Uuid::now_v7());
    let events = facts(&[
        (
            "run_requested",
            json!({"run_id": run, "test_case_id": case, "user": "mia"}),
        ),
        (
            "run_finished",
            json!({"run_id": run, "status": "failed", "tests": [
                {"classname": "a", "name": "tab\there", "status": "failed", "duration_ms": 7,
                 "message": "line 1\nline\\2\ttab \"q\""},
                {"classname": "a", "name": "b", "status": "skipped", "duration_ms": 0}]}),
        ),
    ]);
    let mut fold = TestsFold::default();
    for fact in &events {
        fold.apply(fact);
    }
    let table = &runledger_readmodel::rows::TESTS_TABLES[0];
    for name in ["tab\there", "b"] {
        let row = fold
            .test(TestKey::new(TestCaseId(case), "a", name).id().0)
            .unwrap()
            .clone();
        let (mut fast, mut generic) = (String::new(), String::new());
        super::encode::test_line(&row, &mut fast).unwrap();
        crate::copy::encode_row(table, &row, &mut generic).unwrap();
        let (fast, generic): (Vec<&str>, Vec<&str>) = (
            fast.trim_end().split('\t').collect(),
            generic.trim_end().split('\t').collect(),
        );
        assert_eq!(fast.len(), table.columns.len());
        assert_eq!(generic.len(), table.columns.len());
        for ((column, sql_type), (fast, generic)) in
            table.columns.iter().zip(fast.iter().zip(&generic))
        {
            if sql_type.starts_with("json") {
                // The same JSON; the generic encoder sorts the keys.
                let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
                assert_eq!(parse(fast), parse(generic), "{column}");
            } else {
                assert_eq!(fast, generic, "{column}");
            }
        }
    }
}
