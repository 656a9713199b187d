//! `runledger run rerun --failed` end to end: a real executor over a real sshd runs a real
//! pytest suite (one passing test, one failing) that fails; the rerun of its failures runs only
//! the failing test (pytest gets its node id), as the rerun's JUnit report and its per-test
//! results show, and its `run_requested` names the first run.
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

    let _ = std::fs::remove_dir_all(&dir);
    shutdown.cancel();
    executor.await.unwrap().unwrap();
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
