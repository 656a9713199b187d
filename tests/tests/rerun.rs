//! Insight across runs end to end, with a real executor over a real sshd running real pytest
//! suites:
//!
//! - `runledger run rerun --failed`: a suite (one passing test, one failing) fails; the rerun of
//!   its failures runs only the failing test (pytest gets its node id), as the rerun's JUnit
//!   report and its per-test results show, and its `run_requested` names the first run;
//! - a test that fails on every other run (a counter file in the venv) is listed flaky with the
//!   runs it flipped between; quarantined, its next failure leaves the run `passed` with
//!   `quarantined_failed: 1`; and the tests read model rebuilt from the log reads the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_executor::{ExecutorSettings, run};
use runledger_test_support::{TestLab, TestSshd, eventually, runledger_binary};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ADMIN: &str = "ada";
/// Provisioning a venv with pytest from PyPI over SSH on a loaded machine.
const PROVISION_WAIT: Duration = Duration::from_secs(240);

const SUITE: &str = "\
def test_ok():
    assert 1 + 1 == 2


class TestApp:
    def test_bad(self):
        assert 2 + 2 == 5
";

/// Fails on every other run: run 1 fails, run 2 passes, … (a counter kept in the venv, in a
/// file named by the test case: the venv's directory outlives the test on this host).
const WOBBLY: &str = "\
import os
import pathlib


def test_steady():
    assert True


def test_flaky():
    counter = pathlib.Path(os.environ['VIRTUAL_ENV']) / os.environ['FLAKY_COUNTER']
    seen = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(seen + 1))
    assert seen % 2 == 1
";

fn cli(lab: &TestLab, args: &[&str]) -> Command {
    let mut command = lab.runledger(runledger_binary());
    command
        .arg("run")
        .args(args)
        .env("RUNLEDGER_ACTOR", ADMIN)
        .env_remove("RUST_LOG");
    command
}

/// The names of the `<testcase>`s of a JUnit report, in order.
fn testcases(report: &str) -> Vec<String> {
    report
        .split("<testcase ")
        .skip(1)
        .filter_map(|case| {
            let name = case.split("name=\"").nth(1)?;
            Some(name.split('"').next()?.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rerun_failed_runs_only_the_failing_tests_over_ssh() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let sshd = TestSshd::start();
    let client = lab.client();
    let shutdown = CancellationToken::new();
    let mut settings = ExecutorSettings::new("rerun", lab.nats.names.clone(), lab.keyring.clone());
    settings.shutdown_grace = Duration::from_secs(5);
    let executor = tokio::spawn(run(lab.nats.client.clone(), settings, shutdown.clone()));

    client.register_admin(ADMIN).await;
    let machine_id = client.register_sshd_machine(ADMIN, &sshd).await;
    let venv_id = Uuid::now_v7();
    let venv = json!({"venv_id": venv_id, "machine_id": machine_id, "name": "pytest",
                      "python": "/usr/bin/python3", "requirements": ["pytest"]});
    assert!(client.send("add_venv", ADMIN, venv).await.accepted);
    eventually(PROVISION_WAIT, "venv_provisioned", || async {
        let log = lab.store.read_after(0, 10_000).await.unwrap();
        let failed = log
            .iter()
            .find(|e| e.event_type == "venv_provisioning_failed");
        assert!(failed.is_none(), "provisioning failed: {failed:?}");
        log.iter()
            .any(|e| e.event_type == "venv_provisioned")
            .then_some(())
    })
    .await;
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "suite", "timeout_s": 120,
        "command": "pytest -q -p no:cacheprovider --junitxml=junit.xml",
        "junit_xml": "junit.xml",
        "files": [{"path": "tests/test_app.py", "content": SUITE}]});
    assert!(
        client
            .send("define_test_case", ADMIN, test_case)
            .await
            .accepted
    );

    // The whole suite: one test fails, so the run fails.
    let dir = std::env::temp_dir().join(format!("runledger-rerun-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let (first_xml, rerun_xml) = (dir.join("first.xml"), dir.join("rerun.xml"));
    let first = cli(&lab, &["start", &test_case_id.to_string(), "--junit-out"])
        .arg(&first_xml)
        .output()
        .await
        .unwrap();
    assert_eq!(first.status.code(), Some(1), "{first:?}");
    let first_run = String::from_utf8(first.stdout).unwrap().trim().to_owned();
    let report = std::fs::read_to_string(&first_xml).unwrap();
    assert_eq!(testcases(&report), ["test_ok", "test_bad"], "{report}");
    eventually(
        Duration::from_secs(20),
        "the read models to see the failure",
        || async {
            let shown = cli(&lab, &["show", &first_run]).output().await.unwrap();
            let value: Value = serde_json::from_slice(&shown.stdout).ok()?;
            (value["status"] == "failed").then_some(())
        },
    )
    .await;

    // Its failures only: pytest runs the one node id, the report holds the one test.
    let rerun = cli(&lab, &["rerun", &first_run, "--failed", "--junit-out"])
        .arg(&rerun_xml)
        .output()
        .await
        .unwrap();
    assert_eq!(
        rerun.status.code(),
        Some(1),
        "the test still fails: {rerun:?}"
    );
    let rerun_run = String::from_utf8(rerun.stdout).unwrap().trim().to_owned();
    let report = std::fs::read_to_string(&rerun_xml).unwrap();
    assert_eq!(testcases(&report), ["test_bad"], "{report}");
    assert!(
        report.contains(r#"classname="tests.test_app.TestApp""#),
        "{report}"
    );

    let log = lab.store.read_after(0, 10_000).await.unwrap();
    let of_rerun = |kind: &str| {
        log.iter()
            .find(|e| e.event_type == kind && e.data["run_id"] == json!(rerun_run))
            .map(|e| e.data.clone())
            .unwrap_or_else(|| panic!("no {kind} of the rerun"))
    };
    let requested = of_rerun("run_requested");
    assert_eq!(requested["rerun_of"], json!(first_run), "{requested}");
    assert_eq!(
        requested["tests"],
        json!([{"classname": "tests.test_app.TestApp", "name": "test_bad"}])
    );
    let finished = of_rerun("run_finished");
    assert_eq!(finished["summary"]["failed"], 1, "{finished}");
    assert_eq!(finished["summary"]["passed"], 0, "{finished}");

    flaky_then_quarantined(&lab).await;

    let _ = std::fs::remove_dir_all(&dir);
    shutdown.cancel();
    executor.await.unwrap().unwrap();
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

/// `runledger <args>` as the admin; its stdout, once it exits with `code`.
async fn runledger(lab: &TestLab, args: &[&str], code: i32) -> String {
    let output = lab
        .runledger(runledger_binary())
        .args(args)
        .env("RUNLEDGER_ACTOR", ADMIN)
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Runs the wobbly suite once, waiting for its end; returns the run.
async fn wobbly_run(lab: &TestLab, test_case_id: &str, code: i32) -> String {
    runledger(lab, &["run", "start", test_case_id, "--wait"], code)
        .await
        .trim()
        .to_owned()
}

async fn flaky_then_quarantined(lab: &TestLab) {
    let test_case_id = Uuid::now_v7().to_string();
    let test_case = json!({"test_case_id": test_case_id, "name": "wobbly", "timeout_s": 120,
        "command": "pytest -q -p no:cacheprovider --junitxml=junit.xml",
        "junit_xml": "junit.xml", "env": {"FLAKY_COUNTER": format!("flaky-{test_case_id}")},
        "files": [{"path": "tests/test_wobbly.py", "content": WOBBLY}]});
    lab.client()
        .accept("define_test_case", ADMIN, test_case)
        .await;
    let mut runs = Vec::new();
    for round in 0..4 {
        let code = if round % 2 == 0 { 1 } else { 0 };
        runs.push(wobbly_run(lab, &test_case_id, code).await);
    }
    let head = lab.store.head().await.unwrap();
    eventually(Duration::from_secs(30), "the read models", || async {
        let at = runledger_readmodel::projected_position(&lab.db.pool)
            .await
            .ok()?;
        (at >= head).then_some(())
    })
    .await;

    // Listed flaky, with the runs it flipped between.
    let listed = runledger(
        lab,
        &["tests", "list", "--flaky", "--test-case", &test_case_id],
        0,
    )
    .await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "only test_flaky is flaky:\n{listed}");
    assert!(
        lines[1].contains("tests.test_wobbly::test_flaky"),
        "{listed}"
    );
    let test_id = lines[1].split_whitespace().next().unwrap().to_owned();
    let shown = runledger(lab, &["tests", "show", &test_id], 0).await;
    assert!(shown.contains("flaky         yes (score 1.00"), "{shown}");
    for pair in runs.windows(2) {
        assert!(
            shown.contains(&format!("run {} #1 -> run {} #1", pair[0], pair[1])),
            "a flip from {} to {}:\n{shown}",
            pair[0],
            pair[1]
        );
    }

    // Quarantined, its next failure (the fifth run's) does not fail the run.
    runledger(
        lab,
        &[
            "tests",
            "quarantine",
            &test_id,
            "--reason",
            "fails every other run",
            "--test-case",
            &test_case_id,
        ],
        0,
    )
    .await;
    let excused = wobbly_run(lab, &test_case_id, 0).await;
    let log = lab.store.read_after(0, 100_000).await.unwrap();
    let finished = log
        .iter()
        .find(|e| e.event_type == "run_finished" && e.data["run_id"] == json!(excused))
        .unwrap();
    assert_eq!(finished.data["status"], "passed", "{}", finished.data);
    assert_eq!(
        finished.data["summary"]["quarantined_failed"], 1,
        "{}",
        finished.data
    );
    assert_eq!(finished.data["summary"]["failed"], 1, "{}", finished.data);

    // Rebuilt from the log, the tests read model reads the same.
    let head = lab.store.head().await.unwrap();
    eventually(Duration::from_secs(30), "the read models", || async {
        let at = runledger_readmodel::projected_position(&lab.db.pool)
            .await
            .ok()?;
        (at >= head).then_some(())
    })
    .await;
    let before = (
        runledger(lab, &["tests", "list", "--test-case", &test_case_id], 0).await,
        runledger(lab, &["tests", "show", &test_id], 0).await,
    );
    runledger(lab, &["projections", "rebuild", "tests"], 0).await;
    let after = (
        runledger(lab, &["tests", "list", "--test-case", &test_case_id], 0).await,
        runledger(lab, &["tests", "show", &test_id], 0).await,
    );
    assert_eq!(before, after);
    assert!(after.1.contains("quarantined   since"), "{}", after.1);
}
