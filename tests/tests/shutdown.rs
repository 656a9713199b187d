//! SIGTERM during load loses nothing: a handler process is stopped with SIGTERM while commands
//! keep arriving; it finishes the group it was deciding and exits cleanly, a second handler
//! takes over, and every command ends up recorded exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{TestLab, eventually, runledger_binary};
use runledger_types::CommandId;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use uuid::Uuid;

const COMMANDS: usize = 1_000;

fn handler_process(lab: &TestLab) -> Child {
    Command::new(runledger_binary())
        .args(["serve", "--components", "handler", "--dev"])
        .env("DATABASE_URL", &lab.db.url)
        .env("NATS_URL", &lab.nats.url)
        .env("RUNLEDGER_NATS_PREFIX", lab.nats.names.prefix())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start a handler")
}

async fn count(lab: &TestLab, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&lab.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_loses_nothing() {
    let lab = TestLab::create().await;
    let client = lab.client();
    let mut first = handler_process(&lab);
    let test_case_id = Uuid::now_v7();
    let define = json!({"test_case_id": test_case_id, "name": "t", "command": "true"});
    // Retried until the handler process is up.
    eventually(Duration::from_secs(30), "the handler to answer", || {
        let (client, define) = (client.clone(), define.clone());
        async move {
            let outcome = client.send("define_test_case", "ci", define).await;
            outcome.accepted.then_some(())
        }
    })
    .await;

    let mut run_ids = Vec::with_capacity(COMMANDS);
    for index in 0..COMMANDS {
        let run_id = Uuid::now_v7();
        run_ids.push(run_id);
        let payload = json!({"run_id": run_id, "test_case_id": test_case_id});
        client
            .publish(CommandId::new(), "start_run", "ci", payload)
            .await;
        if index == COMMANDS / 4 {
            let pid = first.id().expect("running").to_string();
            let status = Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .await
                .unwrap();
            assert!(status.success());
        }
    }
    let exit = tokio::time::timeout(Duration::from_secs(30), first.wait())
        .await
        .expect("the handler stops after SIGTERM")
        .unwrap();
    assert!(exit.success(), "a graceful exit, got {exit:?}");
    let decided_before = count(
        &lab,
        "SELECT count(*) FROM events WHERE type = 'run_requested'",
    )
    .await;
    assert!(
        (decided_before as usize) < COMMANDS,
        "the first handler stopped before the load ended ({decided_before})"
    );
    let mut second = handler_process(&lab);
    eventually(Duration::from_secs(60), "every run requested", || async {
        let requested = count(
            &lab,
            "SELECT count(*) FROM events WHERE type = 'run_requested'",
        )
        .await;
        (requested as usize == COMMANDS).then_some(())
    })
    .await;
    let distinct = count(
        &lab,
        "SELECT count(DISTINCT data->>'run_id') FROM events WHERE type = 'run_requested'",
    )
    .await;
    assert_eq!(
        distinct as usize, COMMANDS,
        "each run requested exactly once"
    );
    let rejected = count(
        &lab,
        "SELECT count(*) FROM events WHERE type = 'command_rejected'",
    )
    .await;
    assert_eq!(rejected, 0);
    let _ = second.start_kill();
    let _ = second.wait().await;
    lab.cleanup().await;
}
