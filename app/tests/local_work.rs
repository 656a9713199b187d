//! Work on `local` machines (the executor's own host) against the real binary: it runs only
//! when the executor's operator allows it, and the test's processes never see the executor's
//! environment (its credential key, NATS URL and database URL above all).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use runledger_test_support::{TestLab, eventually};
use runledger_types::{EventRecord, Outcome};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Child;
use uuid::Uuid;

const ADMIN: &str = "ada";
const WAIT: Duration = Duration::from_secs(60);
/// What an operator's environment might hold; none of it may reach a test process.
const DATABASE_URL: &str = "postgres://runledger:db-password-do-not-leak@127.0.0.1:5432/runledger";

fn accepted(outcome: Outcome) -> Outcome {
    assert!(outcome.accepted, "expected acceptance, got {outcome:?}");
    outcome
}

/// A fresh home directory for the executor (venvs and run directories go under it).
struct TempHome(PathBuf);

impl TempHome {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("rl-home-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempHome(dir)
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `runledger serve --components executor`, with the operator's secrets in its environment.
fn executor(lab: &TestLab, home: &TempHome, key: &str, allow_local: bool) -> Child {
    lab.runledger(env!("CARGO_BIN_EXE_runledger"))
        .args(["serve", "--components", "executor"])
        .env("RUNLEDGER_SECRET_KEY", key)
        .env("DATABASE_URL", DATABASE_URL)
        .env("RUNLEDGER_EXECUTOR_ALLOW_LOCAL", allow_local.to_string())
        .env("RUNLEDGER_EXECUTOR_NAME", "local-test")
        .env("HOME", &home.0)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the executor")
}

async fn first_event(lab: &TestLab, event_type: &str) -> EventRecord {
    eventually(WAIT, event_type, || async {
        lab.store
            .read_after(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.event_type == event_type)
    })
    .await
}

/// An admin, a `local` machine and a venv on it.
async fn local_lab(lab: &TestLab) -> Uuid {
    let client = lab.client();
    let admin = json!({"username": ADMIN, "role": "admin", "password": "ada-password"});
    accepted(client.send("register_user", "bootstrap", admin).await);
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "this host", "host": "local",
                         "username": "runner"});
    accepted(client.send("register_machine", ADMIN, machine).await);
    let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id, "name": "env-check",
                      "python": "/usr/bin/python3"});
    accepted(client.send("add_venv", ADMIN, venv).await);
    machine_id
}

#[tokio::test]
async fn a_local_run_sees_none_of_the_executors_environment() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let home = TempHome::new();
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let mut child = executor(&lab, &home, &key, true);
    local_lab(&lab).await;
    first_event(&lab, "venv_provisioned").await;

    let client = lab.client();
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "print env", "command": "env",
                           "env": {"SUITE": "nightly"}, "env_overridable": ["TARGET"]});
    accepted(client.send("define_test_case", ADMIN, test_case).await);
    let run = json!({"run_id": Uuid::now_v7(), "test_case_id": test_case_id,
                     "env": {"TARGET": "staging"}});
    accepted(client.send("start_run", ADMIN, run).await);
    let finished = first_event(&lab, "run_finished").await;
    assert_eq!(finished.data["status"], "passed", "{:?}", finished.data);

    let printed: String = lab
        .store
        .read_after(0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "run_output")
        .filter_map(|e| e.data["text"].as_str().map(str::to_owned))
        .collect();
    let names: Vec<&str> = printed
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    // The test case's and the run's env arrive, and so does what a test needs.
    for line in ["SUITE=nightly", "TARGET=staging", "RUNLEDGER_RUN_ID="] {
        assert!(printed.contains(line), "{line} missing from:\n{printed}");
    }
    assert!(names.contains(&"PATH"), "{printed}");
    // The executor's own settings and secrets do not.
    for secret in [
        key.as_str(),
        lab.nats.url.as_str(),
        "db-password-do-not-leak",
    ] {
        assert!(
            !printed.contains(secret),
            "{secret} leaked into:\n{printed}"
        );
    }
    for name in [
        "RUNLEDGER_SECRET_KEY",
        "NATS_URL",
        "DATABASE_URL",
        "RUST_LOG",
    ] {
        assert!(!names.contains(&name), "{name} leaked into:\n{printed}");
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn an_executor_not_allowed_local_work_runs_none() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let home = TempHome::new();
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let mut child = executor(&lab, &home, &key, false);
    local_lab(&lab).await;
    let failed = first_event(&lab, "venv_provisioning_failed").await;
    let reason = failed.data.to_string();
    assert!(
        reason.contains("RUNLEDGER_EXECUTOR_ALLOW_LOCAL"),
        "{reason}"
    );
    let venvs = home.0.join(".runledger/venvs");
    assert!(!venvs.exists(), "nothing ran on the executor's host");
    assert_eq!(
        Value::Null,
        lab.store
            .read_after(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.event_type == "venv_provisioned")
            .map_or(Value::Null, |e| e.data)
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    handler.stop().await;
    lab.cleanup().await;
}
