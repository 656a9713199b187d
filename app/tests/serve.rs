//! The real binary: `serve --components handler` takes commands from any NATS client (here the
//! binary's own `send`), and `serve` refuses to start without a secret key unless `--dev`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{TEST_SECRET_KEY, TestDb, TestNats, eventually, runledger_command};
use std::time::Duration;
use tokio::process::Command;

fn runledger(db: &TestDb, nats: &TestNats) -> Command {
    let mut command = runledger_command(env!("CARGO_BIN_EXE_runledger"), &db.url, nats);
    command.env_remove("RUNLEDGER_SECRET_KEY");
    command
}

#[tokio::test]
async fn serve_handler_answers_commands_and_stops_on_sigterm() {
    let db = TestDb::create().await;
    let nats = TestNats::create().await;
    let mut server = runledger(&db, &nats)
        .args(["serve", "--components", "handler"])
        .env("RUNLEDGER_SECRET_KEY", TEST_SECRET_KEY)
        .spawn()
        .unwrap();

    let payload = r#"{"username":"ada","role":"admin","password":"correct-horse"}"#;
    let output = eventually(Duration::from_secs(30), "the handler to answer", || async {
        let output = runledger(&db, &nats)
            .args(["send", "register_user", payload, "--timeout", "3s"])
            .output()
            .await
            .unwrap();
        output.status.success().then_some(output)
    })
    .await;
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outcome["accepted"], true);
    assert_eq!(outcome["events"][0]["type"], "user_registered");
    assert_eq!(outcome["events"][0]["stream_id"], "user-ada");

    let again = runledger(&db, &nats)
        .args(["send", "register_user", payload])
        .output()
        .await
        .unwrap();
    assert!(!again.status.success(), "a rejected command exits non-zero");
    let rejected: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(rejected["error"]["code"], "user_exists");

    let pid = server.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .expect("stops within 20 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
    nats.cleanup().await;
    db.cleanup().await;
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_secret_key() {
    let db = TestDb::create().await;
    let nats = TestNats::create().await;
    let output = runledger(&db, &nats)
        .args(["serve", "--components", "handler"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RUNLEDGER_SECRET_KEY"), "{stderr}");
    nats.cleanup().await;
    db.cleanup().await;
}
