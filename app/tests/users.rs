//! The real binary: `runledger user add|passwd|revoke-tokens|disable` over NATS, seen through a
//! gateway of `serve`: a changed password ends the old one, revoked tokens and a disabled user
//! are refused; and the session cookie is `Secure` unless `serve --dev`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use runledger_test_support::{
    TestDb, TestNats, eventually, free_port, runledger_command, wait_until_healthy,
};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

fn runledger(db: &TestDb, nats: &TestNats) -> Command {
    runledger_command(env!("CARGO_BIN_EXE_runledger"), &db.url, nats)
}

/// `serve` with `args` and a gateway on a free port; returns it and the gateway's base URL.
async fn serve(db: &TestDb, nats: &TestNats, args: &[&str]) -> (Child, String) {
    let port = free_port();
    let child = runledger(db, nats)
        .arg("serve")
        .args(args)
        .env("RUNLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&base, Duration::from_secs(30)).await;
    (child, base)
}

/// `runledger user ...` as `actor`, with `password` in `RUNLEDGER_NEW_PASSWORD`; must succeed.
async fn user(db: &TestDb, nats: &TestNats, args: &[&str], actor: &str, password: &str) {
    let output = runledger(db, nats)
        .arg("user")
        .args(args)
        .args(["--actor", actor])
        .env("RUNLEDGER_NEW_PASSWORD", password)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "user {args:?}: {stderr}");
}

/// Logs in at `base`: the status, the `Set-Cookie` header and the token.
async fn login(base: &str, user: &str, password: &str) -> (StatusCode, String, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/tokens"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, cookie, body["token"].as_str().map(str::to_owned))
}

async fn me(base: &str, token: &str) -> StatusCode {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    response.status()
}

/// Waits (well within the gateway's 10 s token cache) until `token` is refused.
async fn refused(base: &str, token: &str) {
    eventually(Duration::from_secs(5), "the token refused", || async {
        (me(base, token).await == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_commands_take_effect_on_the_gateway() {
    let db = TestDb::create().await;
    let nats = TestNats::create().await;
    let (mut dev, dev_base) = serve(
        &db,
        &nats,
        &["--components", "handler,projector,gateway", "--dev"],
    )
    .await;
    let (mut prod, base) = serve(&db, &nats, &["--components", "gateway"]).await;
    let first = "first-password";
    eventually(Duration::from_secs(30), "the handler", || async {
        let output = runledger(&db, &nats)
            .args(["user", "add", "ada", "--role", "admin"])
            .env("RUNLEDGER_NEW_PASSWORD", "ada-password")
            .output()
            .await
            .unwrap();
        output.status.success().then_some(())
    })
    .await;
    user(&db, &nats, &["add", "mia"], "ada", first).await;

    let (status, cookie, _) = login(&dev_base, "mia", first).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!cookie.contains("Secure"), "--dev: {cookie}");
    let (status, cookie, token) = login(&base, "mia", first).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(cookie.contains("; Secure"), "{cookie}");
    let token = token.unwrap();
    assert_eq!(me(&base, &token).await, StatusCode::OK);

    user(&db, &nats, &["passwd", "mia"], "ada", "second-password").await;
    refused(&base, &token).await;
    assert_eq!(login(&base, "mia", first).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, token) = login(&base, "mia", "second-password").await;
    assert_eq!(status, StatusCode::CREATED);
    let token = token.unwrap();

    assert_eq!(me(&base, &token).await, StatusCode::OK);
    user(&db, &nats, &["revoke-tokens", "mia"], "ada", "").await;
    refused(&base, &token).await;
    let (status, _, token) = login(&base, "mia", "second-password").await;
    assert_eq!(status, StatusCode::CREATED);
    let token = token.unwrap();
    assert_eq!(me(&base, &token).await, StatusCode::OK);

    user(&db, &nats, &["disable", "mia"], "ada", "").await;
    refused(&base, &token).await;
    assert_eq!(
        login(&base, "mia", "second-password").await.0,
        StatusCode::FORBIDDEN
    );

    dev.kill().await.unwrap();
    prod.kill().await.unwrap();
    nats.cleanup().await;
    db.cleanup().await;
}
