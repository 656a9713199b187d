//! One log per bus: a database dropped and created again, or a second lab on the same NATS,
//! finds the prefix's streams holding another log's events. Every component refuses them,
//! plainly, and nothing acts on the other log's events; `runledger bus reset` is a way out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_bus::{StreamClaim, claim::observe};
use runledger_handler::{ClaimError, HandlerError};
use runledger_test_support::{
    TestDb, TestLab, eventually, free_port, runledger_binary, wait_until_healthy,
};
use runledger_types::LogId;
use std::time::Duration;

/// A lab whose handler has published `users` events to its streams, then stopped.
async fn lab_with_events(users: usize) -> TestLab {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    for index in 0..users {
        client
            .accept(
                "register_user",
                "bootstrap",
                serde_json::json!({"username": format!("user{index}"), "role": "member",
                    "password": "member-password"}),
            )
            .await;
    }
    eventually(Duration::from_secs(20), "the relay to publish", || async {
        let state = observe(&lab.nats.jetstream(), &lab.nats.names.events_stream())
            .await
            .unwrap()?;
        (state.last_sequence == users as u64).then_some(())
    })
    .await;
    handler.stop().await;
    lab
}

/// A second lab: a new database (a new log) on the first lab's NATS prefix.
async fn second_log_on(first: &TestLab) -> TestLab {
    let db = TestDb::create().await;
    let store = runledger_store::EventStore::new(db.pool.clone());
    TestLab {
        db,
        nats: first.nats.clone(),
        store,
        keyring: first.keyring.clone(),
    }
}

async fn events_claim(lab: &TestLab) -> Option<StreamClaim> {
    observe(&lab.nats.jetstream(), &lab.nats.names.events_stream())
        .await
        .unwrap()
        .and_then(|state| state.claim)
}

fn assert_names_everything(message: &str, stream: &str, ours: LogId, theirs: LogId) {
    for needed in [
        stream,
        &ours.to_string(),
        &theirs.to_string(),
        "RUNLEDGER_NATS_PREFIX",
        "runledger bus reset",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }
}

#[tokio::test]
async fn the_streams_carry_the_logs_identity_and_every_event_its_header() {
    let lab = lab_with_events(3).await;
    let log = lab.store.log_id().await.unwrap();
    assert_eq!(events_claim(&lab).await, Some(StreamClaim::new(log)));
    let stream = lab
        .nats
        .jetstream()
        .get_stream(lab.nats.names.events_stream())
        .await
        .unwrap();
    for sequence in 1..=3 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let header = message.headers.get(runledger_bus::LOG_HEADER).unwrap();
        assert_eq!(header.as_str(), log.to_string());
    }
    lab.cleanup().await;
}

#[tokio::test]
async fn a_handler_of_a_new_database_refuses_the_old_logs_streams_and_appends_nothing() {
    let first = lab_with_events(5).await;
    let second = second_log_on(&first).await;
    let (ours, theirs) = (
        second.store.log_id().await.unwrap(),
        first.store.log_id().await.unwrap(),
    );
    assert_ne!(ours, theirs, "each database has its own log");
    let handler = second.handler(100).await;
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        runledger_handler::run(handler, Default::default()),
    )
    .await
    .expect("the handler stops at once");
    let Err(HandlerError::Claim(ClaimError::Refused(refusal))) = result else {
        panic!("not refused: {result:?}");
    };
    assert_names_everything(
        &refusal.to_string(),
        &first.nats.names.events_stream(),
        ours,
        theirs,
    );
    assert_eq!(second.store.head().await.unwrap(), 0, "nothing appended");
    assert_eq!(
        events_claim(&first).await,
        Some(StreamClaim::new(theirs)),
        "the stream is left as it was"
    );
    second.db.cleanup().await;
    first.cleanup().await;
}

#[tokio::test]
async fn serve_exits_non_zero_naming_the_stream_both_logs_and_the_ways_out() {
    let first = lab_with_events(2).await;
    let second = second_log_on(&first).await;
    let ours = second.store.log_id().await.unwrap();
    let theirs = first.store.log_id().await.unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        second
            .runledger(runledger_binary())
            .args(["serve", "--dev"])
            .env("RUNLEDGER_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("RUST_BACKTRACE", "0")
            .output(),
    )
    .await
    .expect("serve exits")
    .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_names_everything(&stderr, &first.nats.names.events_stream(), ours, theirs);
    assert_eq!(second.store.head().await.unwrap(), 0, "nothing appended");
    second.db.cleanup().await;
    first.cleanup().await;
}

#[tokio::test]
async fn an_unclaimed_stream_ahead_of_the_log_is_refused_and_one_that_agrees_is_adopted() {
    // An older runledger left streams without identity.
    let first = lab_with_events(4).await;
    let js = first.nats.jetstream();
    let mut config = js
        .get_stream(first.nats.names.events_stream())
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    config.description = None;
    js.update_stream(config).await.unwrap();
    assert_eq!(events_claim(&first).await, None);

    // A new, empty database: the stream holds more than its log.
    let second = second_log_on(&first).await;
    let refused = runledger_handler::claim_streams(&second.store, &js, &second.nats.names).await;
    assert!(
        matches!(
            &refused,
            Err(ClaimError::Refused(runledger_bus::Refusal::Unclaimed {
                last_sequence: 4,
                head: 0,
                ..
            }))
        ),
        "{refused:?}"
    );

    // The log that wrote it adopts it: its later events carry the header.
    let claim = runledger_handler::claim_streams(&first.store, &js, &first.nats.names)
        .await
        .unwrap();
    let log = first.store.log_id().await.unwrap();
    assert_eq!(
        claim,
        StreamClaim {
            log,
            headers_from: 5
        }
    );
    assert_eq!(events_claim(&first).await, Some(claim));
    second.db.cleanup().await;
    first.cleanup().await;
}

#[tokio::test]
async fn a_gateway_on_another_logs_stream_is_not_ready_and_says_why() {
    let first = lab_with_events(2).await;
    let second = second_log_on(&first).await;
    let ours = second.store.log_id().await.unwrap();
    let theirs = first.store.log_id().await.unwrap();
    let port = free_port();
    let mut gateway = second
        .runledger(runledger_binary())
        .args(["serve", "--dev", "--components", "gateway"])
        .env("RUNLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&base, Duration::from_secs(30)).await;
    let body = eventually(Duration::from_secs(20), "/readyz to say wedged", || async {
        let response = reqwest::get(format!("{base}/readyz")).await.ok()?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.ok()?;
        (status == 503 && !body["wedged"].as_array()?.is_empty()).then_some(body)
    })
    .await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["wedged"][0]["component"], "gateway");
    let reason = body["wedged"][0]["reason"].as_str().unwrap();
    assert_names_everything(reason, &first.nats.names.events_stream(), ours, theirs);
    gateway.kill().await.unwrap();
    second.db.cleanup().await;
    first.cleanup().await;
}

#[tokio::test]
async fn bus_reset_asks_then_deletes_the_streams_and_the_new_log_takes_the_prefix() {
    let first = lab_with_events(2).await;
    let second = second_log_on(&first).await;
    let bin = runledger_binary();
    let check = second
        .runledger(bin)
        .args(["bus", "check"])
        .output()
        .await
        .unwrap();
    assert_eq!(check.status.code(), Some(3), "{check:?}");

    // Without a terminal to ask on and without --yes, nothing is deleted.
    let unasked = second
        .runledger(bin)
        .args(["bus", "reset"])
        .output()
        .await
        .unwrap();
    assert!(!unasked.status.success());
    assert!(String::from_utf8_lossy(&unasked.stderr).contains("--yes"));
    assert!(events_claim(&first).await.is_some());

    let reset = second
        .runledger(bin)
        .args(["bus", "reset", "--yes"])
        .output()
        .await
        .unwrap();
    assert!(reset.status.success(), "{reset:?}");
    assert_eq!(events_claim(&first).await, None);
    let check = second
        .runledger(bin)
        .args(["bus", "check"])
        .output()
        .await
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // The new log's handler claims the prefix and works.
    let handler = second.start_handler().await;
    let ours = second.store.log_id().await.unwrap();
    eventually(Duration::from_secs(10), "the new log's claim", || async {
        (events_claim(&second).await == Some(StreamClaim::new(ours))).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "the commands stream", || async {
        let commands = second.nats.names.commands_stream();
        observe(&second.nats.jetstream(), &commands)
            .await
            .unwrap()
            .map(|_| ())
    })
    .await;
    second.client().register_admin("ada").await;
    handler.stop().await;
    second.db.cleanup().await;
    first.cleanup().await;
}
#[tokio::test]
async fn an_executor_waits_for_a_claim_and_works_on_nothing_meanwhile() {
    // An older runledger's lab left its events in a stream without identity.
    let first = lab_with_events(2).await;
    let js = first.nats.jetstream();
    let mut config = js
        .get_stream(first.nats.names.events_stream())
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    config.description = None;
    js.update_stream(config).await.unwrap();
    let commands_before = observe(&js, &first.nats.names.commands_stream())
        .await
        .unwrap()
        .unwrap()
        .last_sequence;

    let nats = runledger_bus::connect(&first.nats.url, "test-executor")
        .await
        .unwrap();
    let mut settings = runledger_executor::ExecutorSettings::new(
        "waiting",
        first.nats.names.clone(),
        first.keyring.clone(),
    );
    let wedges = settings.wedges.clone();
    settings.shutdown_grace = Duration::from_secs(1);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let executor = tokio::spawn(runledger_executor::run(nats, settings, shutdown.clone()));
    let reason = eventually(Duration::from_secs(10), "the executor to wedge", || async {
        wedges
            .all()
            .into_iter()
            .find(|(component, _)| component == "executor")
            .map(|(_, reason)| reason)
    })
    .await;
    assert!(reason.contains("no log identity"), "{reason}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let commands_after = observe(&js, &first.nats.names.commands_stream())
        .await
        .unwrap()
        .unwrap()
        .last_sequence;
    assert_eq!(commands_before, commands_after, "no report, no heartbeat");
    shutdown.cancel();
    executor.await.unwrap().unwrap();
    first.cleanup().await;
}
