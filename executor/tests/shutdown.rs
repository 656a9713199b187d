//! An executor asked to stop (SIGTERM in `runledger serve`) finishes the run it is driving
//! within its shutdown grace, still following the log and heartbeating, and reports its end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_executor::{ExecutorSettings, run};
use runledger_test_support::{TestLab, eventually};
use runledger_types::EventRecord;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

async fn events(lab: &TestLab) -> Vec<EventRecord> {
    lab.store.read_after(0, 10_000).await.expect("read the log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopping_executor_finishes_its_run() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let shutdown = CancellationToken::new();
    let mut settings =
        ExecutorSettings::new("stopping", lab.nats.names.clone(), lab.keyring.clone());
    settings.shutdown_grace = Duration::from_secs(30);
    settings.allow_local = true;
    let executor = tokio::spawn(run(lab.nats.client.clone(), settings, shutdown.clone()));

    client.register_admin("ada").await;
    let machine_id = client.register_local_machine("ada").await;
    let venv_dir = std::env::temp_dir().join(format!("rl-venv-{}", Uuid::now_v7()));
    let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id, "name": "v",
                      "path": venv_dir.to_string_lossy(), "python": "python3"});
    assert!(client.send("add_venv", "ada", venv).await.accepted);
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "slow",
                           "command": "echo begun; sleep 3; echo finished"});
    assert!(
        client
            .send("define_test_case", "ada", test_case)
            .await
            .accepted
    );
    let run_id = Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": test_case_id});
    assert!(client.send("start_run", "ada", start).await.accepted);
    eventually(WAIT, "the run's first output", || async {
        events(&lab)
            .await
            .iter()
            .any(|e| e.event_type == "run_output" && e.data["run_id"] == json!(run_id))
            .then_some(())
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(WAIT, executor)
        .await
        .expect("the executor stops within its grace")
        .unwrap()
        .unwrap();
    let log = events(&lab).await;
    let end = log
        .iter()
        .find(|e| e.event_type == "run_finished" && e.data["run_id"] == json!(run_id))
        .expect("the run's end was reported before the executor stopped");
    assert_eq!(end.data["status"], "passed", "{}", end.data);
    let output: String = log
        .iter()
        .filter(|e| e.event_type == "run_output" && e.data["run_id"] == json!(run_id))
        .map(|e| e.data["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(output, "begun\nfinished\n");
    handler.stop().await;
    let _ = std::fs::remove_dir_all(&venv_dir);
    lab.cleanup().await;
}
