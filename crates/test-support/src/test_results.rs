//! Runs with per-test results, reported the way an executor reports them, for the tests of the
//! insight features (the tests read model, its API and CLI).

use crate::client::CommandClient;
use serde_json::{Value, json};
use uuid::Uuid;

/// A lab where runs of one test case can be reported by hand: a `local` machine with one
/// provisioned venv and a test case, set up by the admin `admin`; the venv is reported
/// provisioned by `executor`. Returns the test case.
pub async fn lab_for_reported_runs(client: &CommandClient, admin: &str, executor: &str) -> Uuid {
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "here", "host": "local",
                         "username": "runner"});
    client.accept("register_machine", admin, machine).await;
    let venv_id = Uuid::now_v7();
    let venv = json!({"venv_id": venv_id, "machine_id": machine_id, "name": "v"});
    client.accept("add_venv", admin, venv).await;
    client
        .accept(
            "report_venv_provisioned",
            executor,
            json!({"venv_id": venv_id}),
        )
        .await;
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "suite", "command": "pytest"});
    client.accept("define_test_case", admin, test_case).await;
    test_case_id
}

/// Starts a run of `test_case_id` as `admin` and ends it as `executor` with `status`, the
/// per-test results `tests` (JUnit's shape: `classname`, `name`, `status`, `duration_ms`,
/// `message`) and the summary they add up to. The lab's one venv must be free. Returns the run.
pub async fn reported_run(
    client: &CommandClient,
    (admin, executor): (&str, &str),
    test_case_id: Uuid,
    status: &str,
    tests: Value,
) -> Uuid {
    let run_id = Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": test_case_id});
    client.accept("start_run", admin, start).await;
    client
        .accept("report_run_started", executor, json!({"run_id": run_id}))
        .await;
    let exit_code = i32::from(status != "passed");
    let count = |outcome: &str| {
        tests.as_array().map_or(0, |tests| {
            tests.iter().filter(|t| t["status"] == outcome).count()
        })
    };
    let summary = json!({"passed": count("passed"), "failed": count("failed"),
                         "skipped": count("skipped"), "errors": count("error")});
    let finished = json!({"run_id": run_id, "status": status, "exit_code": exit_code,
                          "summary": summary, "tests": tests});
    client
        .accept("report_run_finished", executor, finished)
        .await;
    run_id
}

/// A passing whole run of `test_case_id` whose per-test results are `tests` (all `passed`), on
/// a venv of a `local` machine of its own set up by `admin`, reported by `executor` as an
/// executor reports a large report (in parts of 2,000 results, then the end): the suite's tests
/// and durations a run group is split by. Returns that machine, which nothing else uses (a
/// caller whose later runs must not land there retires it).
pub async fn suite_history(
    client: &CommandClient,
    (admin, executor): (&str, &str),
    test_case_id: Uuid,
    tests: &[Value],
) -> Uuid {
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": format!("history-{machine_id}"),
                         "host": "local", "username": "runner"});
    client.accept("register_machine", admin, machine).await;
    let venv_id = Uuid::now_v7();
    let venv = json!({"venv_id": venv_id, "machine_id": machine_id, "name": "history"});
    client.accept("add_venv", admin, venv).await;
    let provisioned = json!({"venv_id": venv_id});
    client
        .accept("report_venv_provisioned", executor, provisioned)
        .await;
    let run_id = Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": test_case_id, "venv_id": venv_id});
    client.accept("start_run", admin, start).await;
    client
        .accept("report_run_started", executor, json!({"run_id": run_id}))
        .await;
    for (part, chunk) in tests.chunks(2_000).enumerate() {
        let report = json!({"run_id": run_id, "part": part + 1, "tests": chunk});
        client.accept("report_run_tests", executor, report).await;
    }
    let summary = json!({"passed": tests.len(), "failed": 0, "skipped": 0, "errors": 0});
    let finished = json!({"run_id": run_id, "status": "passed", "exit_code": 0,
                          "summary": summary});
    client
        .accept("report_run_finished", executor, finished)
        .await;
    machine_id
}

/// The results of a small suite's `n`-th run: `test_steady` passes (taking `n` × 10 ms),
/// `test_wobbly`'s failure message: quotes, a backslash, a tab and a newline, which every layer
/// that stores it must keep as they are.
pub const WOBBLY_MESSAGE: &str = "assert \"a\\b\" == 'c'\n\tat {x,y} NULL";

/// `test_wobbly` fails on even runs (with [`WOBBLY_MESSAGE`]), `test_slow` passes in 5 s; and
/// the run's status.
pub fn wobbly_suite(n: usize) -> (&'static str, Value) {
    let wobbly = if n.is_multiple_of(2) {
        "failed"
    } else {
        "passed"
    };
    let tests = json!([
        {"classname": "tests.test_app", "name": "test_steady", "status": "passed",
         "duration_ms": n * 10},
        {"classname": "tests.test_app", "name": "test_wobbly", "status": wobbly,
         "duration_ms": 100, "message": (wobbly == "failed").then_some(WOBBLY_MESSAGE)},
        {"classname": "tests.test_app", "name": "test_slow", "status": "passed",
         "duration_ms": 5000},
    ]);
    (wobbly, tests)
}
