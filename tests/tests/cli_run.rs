//! `runledger run ...` as a CI job uses it: the real binary against a handler and a projector,
//! with this test playing the executor (its reports are ordinary commands).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{CommandClient, TestLab, eventually, runledger_binary};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

const EXEC: &str = "executor:cli-test";

fn cli(lab: &TestLab, args: &[&str]) -> Command {
    let mut command = lab.runledger(runledger_binary());
    command
        .arg("run")
        .args(args)
        .env("RUNLEDGER_ACTOR", "ada")
        .env_remove("RUST_LOG");
    command
}

/// An admin, a local machine with a provisioned venv, and a test case; returns the test case.
async fn lab_with_a_venv(client: &CommandClient) -> Uuid {
    client.register_admin("ada").await;
    let machine_id = client.register_local_machine("ada").await;
    let venv_id = Uuid::now_v7();
    let venv = json!({"venv_id": venv_id, "machine_id": machine_id, "name": "v"});
    assert!(client.send("add_venv", "ada", venv).await.accepted);
    assert!(
        client
            .send("report_venv_provisioned", EXEC, json!({"venv_id": venv_id}))
            .await
            .accepted
    );
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "suite", "command": "pytest"});
    assert!(
        client
            .send("define_test_case", "ada", test_case)
            .await
            .accepted
    );
    test_case_id
}

/// Plays the executor: starts the run, prints `text`, ends it with `status` and `tests`.
async fn execute(client: &CommandClient, run_id: &str, text: &str, status: &str, tests: Value) {
    assert!(
        client
            .send("report_run_started", EXEC, json!({"run_id": run_id}))
            .await
            .accepted
    );
    let output = json!({"run_id": run_id, "seq": 1, "stream": "stdout", "text": text});
    assert!(
        client
            .send("report_run_output", EXEC, output)
            .await
            .accepted
    );
    let end = json!({"run_id": run_id, "status": status, "exit_code": i32::from(status != "passed"),
                     "tests": tests});
    assert!(client.send("report_run_finished", EXEC, end).await.accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_wait_follow_junit_list_show_log_and_cancel() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let client = lab.client();
    let test_case = lab_with_a_venv(&client).await.to_string();
    let junit = std::env::temp_dir().join(format!("runledger-cli-{}.xml", Uuid::now_v7()));

    // start --wait --follow --junit-out: the run id first, then the output, exit 0 on a pass.
    let mut waiting = cli(&lab, &["start", &test_case, "--follow", "--junit-out"])
        .arg(&junit)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(waiting.stdout.take().unwrap()).lines();
    let run_id = stdout.next_line().await.unwrap().expect("the run id");
    let tests = json!([
        {"name": "test_ok", "classname": "suite", "status": "passed", "duration_ms": 250},
        {"name": "test_later", "classname": "suite", "status": "skipped"},
    ]);
    execute(&client, &run_id, "hello from the run\n", "passed", tests).await;
    let output = stdout.next_line().await.unwrap().expect("the run's output");
    assert_eq!(output, "hello from the run");
    let status = tokio::time::timeout(Duration::from_secs(20), waiting.wait())
        .await
        .expect("the CLI ends with the run")
        .unwrap();
    assert!(status.success());
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(
        report.contains(r#"tests="2" failures="0" errors="0" skipped="1""#),
        "{report}"
    );
    assert!(
        report.contains(r#"<testcase name="test_ok" classname="suite" time="0.250">"#),
        "{report}"
    );
    let _ = std::fs::remove_file(&junit);

    // start (no wait) prints the id; a failing run: log exits 1 after the output.
    let started = cli(&lab, &["start", &test_case]).output().await.unwrap();
    assert!(started.status.success(), "{started:?}");
    let failing = String::from_utf8(started.stdout).unwrap().trim().to_owned();
    execute(&client, &failing, "boom\n", "failed", json!([])).await;
    let log = cli(&lab, &["log", &failing]).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout), "boom\n");
    assert_eq!(log.status.code(), Some(1), "a failed run's log exits 1");
    let shown = eventually(
        Duration::from_secs(10),
        "show to see the failure",
        || async {
            let shown = cli(&lab, &["show", &failing]).output().await.unwrap();
            let value: Value = serde_json::from_slice(&shown.stdout).ok()?;
            (value["status"] == "failed").then_some(value)
        },
    )
    .await;
    assert_eq!(shown["requested_by"], "ada");
    let listed = cli(&lab, &["list", "--status", "failed"])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains(&failing) && !listed.contains(&run_id),
        "{listed}"
    );

    // cancel: a queued run (the only venv is free again, so start one on a missing label).
    let queued = cli(&lab, &["start", &test_case, "--label", "nowhere"])
        .output()
        .await
        .unwrap();
    let queued = String::from_utf8(queued.stdout).unwrap().trim().to_owned();
    let cancelled = cli(&lab, &["cancel", &queued, "--reason", "no such lab"])
        .output()
        .await
        .unwrap();
    assert!(cancelled.status.success(), "{cancelled:?}");
    let again = cli(&lab, &["cancel", &queued]).output().await.unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("run_finished"));
    let bad = cli(&lab, &["start", "not-a-uuid"]).output().await.unwrap();
    assert_eq!(bad.status.code(), Some(2), "clap refuses a bad id");

    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

fn lab_cli(lab: &TestLab, args: &[&str]) -> Command {
    let mut command = Command::new(runledger_binary());
    command
        .args(args)
        .env("DATABASE_URL", &lab.db.url)
        .env("NATS_URL", &lab.nats.url)
        .env("RUNLEDGER_NATS_PREFIX", lab.nats.names.prefix())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn ok_line(command: &mut Command) -> String {
    let output = command.output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_machines_venvs_and_test_cases_from_the_cli() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let user = [
        "user",
        "add",
        "ada",
        "--role",
        "admin",
        "--actor",
        "bootstrap",
    ];
    ok_line(lab_cli(&lab, &user).env("RUNLEDGER_NEW_PASSWORD", "ada-password-1")).await;
    let missing = lab_cli(
        &lab,
        &["user", "add", "mia", "--password-env", "NOT_SET_ANYWHERE"],
    )
    .output()
    .await
    .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NOT_SET_ANYWHERE"));
    let member = ["user", "add", "mia", "--actor", "ada"];
    ok_line(lab_cli(&lab, &member).env("RUNLEDGER_NEW_PASSWORD", "mia-password-1")).await;

    let machine_id = ok_line(
        lab_cli(
            &lab,
            &[
                "machine",
                "add",
                "here",
                "--host",
                "lab-7.invalid",
                "--user",
                "r",
                "--label",
                "demo",
                "--password-env",
                "LAB_7_PASSWORD",
                "--actor",
                "mia",
            ],
        )
        .env("LAB_7_PASSWORD", "r-password"),
    )
    .await;
    let venv_id = ok_line(&mut lab_cli(
        &lab,
        &[
            "venv",
            "add",
            &machine_id,
            "py",
            "--requirement",
            "pytest",
            "--actor",
            "mia",
        ],
    ))
    .await;
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/passing");
    let refused = lab_cli(
        &lab,
        &[
            "test-case",
            "add",
            "smoke",
            "--command",
            "pytest",
            "--dir",
            examples,
            "--actor",
            "mia",
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(
        !refused.status.success(),
        "members may not define test cases"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("forbidden"));
    let test_case_id = ok_line(&mut lab_cli(
        &lab,
        &[
            "test-case",
            "add",
            "smoke",
            "--command",
            "python -m pytest -q",
            "--dir",
            examples,
            "--junit-xml",
            "report.xml",
            "--actor",
            "ada",
        ],
    ))
    .await;
    let defined = lab
        .store
        .read_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event_type == "test_case_defined")
        .unwrap();
    assert_eq!(defined.data["test_case_id"], json!(test_case_id));
    assert_eq!(defined.data["files"][0]["path"], "test_arithmetic.py");

    // A test case that runs a Jenkins job; the API token comes from the environment and is
    // sealed before it reaches the log.
    let jenkins = [
        "test-case",
        "add",
        "nightly",
        "--jenkins-url",
        "http://127.0.0.1:9/",
        "--jenkins-job",
        "team/nightly",
        "--jenkins-param",
        "BRANCH=main",
        "--jenkins-user",
        "ci-bot",
        "--jenkins-token-env",
        "JENKINS_TOKEN",
        "--actor",
        "ada",
    ];
    let nightly = ok_line(lab_cli(&lab, &jenkins).env("JENKINS_TOKEN", "11aa22bb33cc44dd")).await;
    let log = lab.store.read_after(0, 1000).await.unwrap();
    let defined = log
        .iter()
        .find(|e| e.event_type == "test_case_defined" && e.data["test_case_id"] == json!(nightly))
        .unwrap();
    assert_eq!(defined.data["jenkins"]["job"], "team/nightly");
    assert_eq!(defined.data["jenkins"]["parameters"]["BRANCH"], "main");
    assert!(defined.data["jenkins"]["credentials"]["api_token"]["ciphertext"].is_string());
    assert!(!defined.data.to_string().contains("11aa22bb33cc44dd"));
    let both = lab_cli(
        &lab,
        &[
            "test-case",
            "add",
            "x",
            "--command",
            "true",
            "--jenkins-url",
            "http://j/",
            "--jenkins-job",
            "a",
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(
        !both.status.success(),
        "a command and a Jenkins job together are refused"
    );

    let listed = eventually(Duration::from_secs(10), "the lists", || async {
        let machines = ok_line(&mut lab_cli(&lab, &["machine", "list"])).await;
        let venvs = ok_line(&mut lab_cli(&lab, &["venv", "list"])).await;
        let cases = ok_line(&mut lab_cli(&lab, &["test-case", "list"])).await;
        (machines.contains(&machine_id)
            && venvs.contains(&venv_id)
            && cases.contains("smoke")
            && cases.contains("jenkins: http://127.0.0.1:9/ team/nightly"))
        .then_some(machines)
    })
    .await;
    assert!(listed.contains("mia"), "the owner is listed: {listed}");
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
