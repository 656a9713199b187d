//! `?min_position=`: a position the log has reached is waited for; one beyond the log's head
//! (no command was ever answered with it) gets 409 `beyond_log_head` at once, not a 503 after
//! the whole wait.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::{Client, StatusCode};
use runledger_test_support::TestLab;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_position_beyond_the_log_head_is_refused_at_once() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let (username, password) = common::ADMIN;
    let admin = json!({"username": username, "role": "admin", "password": password});
    let registered = lab.client().send("register_user", "bootstrap", admin).await;
    assert!(registered.accepted);
    let position = registered.events.last().expect("an event").position;
    let shutdown = CancellationToken::new();
    let addr = common::serve_gateway(&lab, &shutdown).await;
    let http = Client::new();
    let token = common::admin_token(addr).await;
    let get = |min_position: i64| {
        http.get(format!(
            "http://{addr}/api/v1/runs?min_position={min_position}"
        ))
        .bearer_auth(&token)
        .send()
    };

    let reached = get(position).await.unwrap();
    assert_eq!(reached.status(), StatusCode::OK);

    let started = Instant::now();
    let beyond = get(position + 1_000_000).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(beyond.status(), StatusCode::CONFLICT);
    let body: Value = beyond.json().await.unwrap();
    assert_eq!(body["error"]["code"], "beyond_log_head", "{body}");
    assert!(
        elapsed < Duration::from_secs(4),
        "answered without waiting out the freshness timeout (took {elapsed:?})"
    );

    shutdown.cancel();
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
