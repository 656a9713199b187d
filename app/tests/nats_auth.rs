//! NATS credentials and TLS through the `NATS_*` settings, against a nats-server of the test's
//! own that requires TLS and a user's password: the handler and a caller each connect as their
//! own user and a command goes through; a wrong password or a client that does not verify the
//! server's certificate gets nothing through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{TestDb, TestNatsServer, eventually};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// A server requiring TLS and one of two users' passwords.
fn secure_nats() -> TestNatsServer {
    let users = r#"authorization { users: [
  { user: handler, password: "handler-pw" },
  { user: caller, password: "caller-pw" }
] }"#;
    TestNatsServer::start_tls(users, &[], &[])
}

/// `runledger` against `db` and `nats` as NATS user `user`, verifying the server with `ca`.
fn runledger(
    db: &TestDb,
    nats: &TestNatsServer,
    user: &str,
    password: &str,
    ca: Option<&Path>,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runledger"));
    command
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", &nats.url)
        .env("RUNLEDGER_NATS_PREFIX", "secure")
        .env(
            "RUNLEDGER_SECRET_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("NATS_USER", user)
        .env("NATS_PASSWORD", password)
        .env_remove("NATS_CA")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(ca) = ca {
        command.env("NATS_CA", ca);
    }
    command
}

#[tokio::test]
async fn components_connect_with_their_own_credentials_over_tls() {
    let db = TestDb::create().await;
    let nats = secure_nats();
    let ca = nats.ca();
    let mut handler = runledger(&db, &nats, "handler", "handler-pw", Some(&ca))
        .args(["serve", "--components", "handler"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let payload = r#"{"username":"ada","role":"admin","password":"correct-horse"}"#;
    let send = |user: &'static str, password: &'static str, ca: Option<PathBuf>| {
        let mut command = runledger(&db, &nats, user, password, ca.as_deref());
        command.args(["send", "register_user", payload, "--timeout", "3s"]);
        command
    };
    let output = eventually(Duration::from_secs(60), "the handler to answer", || async {
        let output = send("caller", "caller-pw", Some(ca.clone()))
            .output()
            .await
            .unwrap();
        output.status.success().then_some(output)
    })
    .await;
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outcome["accepted"], true, "{outcome}");

    // A wrong password, or no CA to verify the server with, gets no answer at all.
    let wrong = send("caller", "guess", Some(ca.clone()))
        .output()
        .await
        .unwrap();
    assert!(!wrong.status.success(), "a wrong password is refused");
    let unverified = send("caller", "caller-pw", None).output().await.unwrap();
    assert!(
        !unverified.status.success(),
        "the server's certificate must be verified"
    );

    handler.start_kill().unwrap();
    handler.wait().await.unwrap();
    db.cleanup().await;
}
