//! The outbox relay: committed events reach RUNLEDGER_EVENTS in log order, stream sequence =
//! position, with no gap or duplicate across a graceful restart and a crash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{CommandClient, TestLab, eventually, suite_history};
use runledger_types::{CommandId, EventRecord};
use serde_json::json;
use std::time::Duration;

async fn register_users(
    client: &CommandClient,
    from: usize,
    count: usize,
) -> Vec<async_nats::Subscriber> {
    let mut waiting = Vec::new();
    for index in from..from + count {
        let id = CommandId::new();
        waiting.push(client.outcome_subscription(id).await);
        let payload = json!({"username": format!("user{index}"), "role": "member", "password": "member-password"});
        client
            .publish(id, "register_user", "bootstrap", payload)
            .await;
    }
    waiting
}

async fn stream_sequence(lab: &TestLab) -> u64 {
    let mut stream = lab
        .nats
        .jetstream()
        .get_stream(lab.nats.names.events_stream())
        .await
        .unwrap();
    stream.info().await.unwrap().state.last_sequence
}

#[tokio::test]
async fn events_are_published_in_position_order_across_restarts_and_crashes() {
    let lab = TestLab::create().await;
    let client = lab.client();

    let first = lab.start_handler_with(7).await;
    for mut outcome in register_users(&client, 0, 30).await {
        CommandClient::next_outcome(&mut outcome).await;
    }
    first.stop().await;

    // Published while no handler runs; the next handler takes them and publishes their events.
    let pending = register_users(&client, 30, 40).await;
    let second = lab.start_handler_with(5).await;
    // Crash mid-flow: whatever was committed must still be published exactly once.
    tokio::time::sleep(Duration::from_millis(30)).await;
    second.kill();
    let third = lab.start_handler_with(1000).await;
    for mut outcome in pending {
        CommandClient::next_outcome(&mut outcome).await;
    }
    let head = lab.store.head().await.unwrap();
    assert_eq!(head, 70);
    eventually(Duration::from_secs(20), "the relay to catch up", || async {
        (stream_sequence(&lab).await == head as u64).then_some(())
    })
    .await;

    let log = lab.store.read_after(0, 1000).await.unwrap();
    let stream = lab
        .nats
        .jetstream()
        .get_stream(lab.nats.names.events_stream())
        .await
        .unwrap();
    for expected in &log {
        let message = stream
            .get_raw_message(expected.position as u64)
            .await
            .unwrap();
        let published: EventRecord = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(
            &published, expected,
            "stream sequence {} holds position {}",
            message.sequence, expected.position
        );
        assert_eq!(
            message.subject.as_str(),
            lab.nats.names.event_subject("user", "user_registered")
        );
        let msg_id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned());
        assert_eq!(msg_id, Some(expected.event_id.to_string()));
    }
    third.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn a_deleted_events_stream_is_created_again_and_refilled_from_the_log() {
    let lab = TestLab::create().await;
    let client = lab.client();
    let handler = lab.start_handler().await;
    for mut outcome in register_users(&client, 0, 5).await {
        CommandClient::next_outcome(&mut outcome).await;
    }
    let js = lab.nats.jetstream();
    js.delete_stream(lab.nats.names.events_stream())
        .await
        .unwrap();
    for mut outcome in register_users(&client, 5, 5).await {
        CommandClient::next_outcome(&mut outcome).await;
    }
    eventually(
        Duration::from_secs(20),
        "the events stream to be refilled",
        || async {
            let mut stream = lab
                .nats
                .jetstream()
                .get_stream(lab.nats.names.events_stream())
                .await
                .ok()?;
            let state = stream.info().await.ok()?.state.clone();
            (state.messages == 10 && state.first_sequence == 1).then_some(())
        },
    )
    .await;
    handler.stop().await;
    lab.cleanup().await;
}

const ADMIN: &str = "admin";
const HISTORY: &str = "executor:history";

/// A test case running `command`, whose suite of 14,000 tests (1.5 MB of names) is known from a
/// whole run. Returns the test case and the machine of that run.
async fn large_suite(client: &CommandClient, command: &str) -> (uuid::Uuid, uuid::Uuid) {
    let test_case_id = uuid::Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": format!("large {command}"),
                           "command": command, "junit_xml": "junit.xml"});
    client.accept("define_test_case", ADMIN, test_case).await;
    let tests: Vec<_> = (0..14_000)
        .map(|i| {
            json!({"classname": "tests.test_suite_module_with_a_long_name",
                   "name": format!("test_case_with_a_descriptive_name_{i:05}"),
                   "status": "passed", "duration_ms": 10 + i % 90})
        })
        .collect();
    let machine_id = suite_history(client, (ADMIN, HISTORY), test_case_id, &tests).await;
    (test_case_id, machine_id)
}

/// A large suite's split is recorded in parts that each fit one NATS message; a decision that
/// would still record an event too large for one (a test case whose file fills the command's
/// message) is refused with `event_too_large`; and the relay, which could never publish such
/// an event, goes on publishing what follows.
#[tokio::test]
async fn large_splits_go_in_parts_and_an_event_too_large_for_one_message_is_refused() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let user = json!({"username": ADMIN, "role": "admin", "password": "admin-password"});
    assert!(
        client
            .send("register_user", "bootstrap", user)
            .await
            .accepted
    );

    let (pytest, machine_id) = large_suite(&client, "pytest -q --junitxml=junit.xml").await;
    // On the history's machine: its members wait there, not for the next suite's venv.
    let group = json!({"group_id": uuid::Uuid::now_v7(), "test_case_id": pytest, "shards": 4,
                       "machine_id": machine_id});
    let outcome = client.send("start_group", ADMIN, group).await;
    assert!(outcome.accepted, "{outcome:?}");
    let parts = outcome
        .events
        .iter()
        .filter(|e| e.event_type == "group_tests_planned")
        .count();
    assert!(
        parts >= 6,
        "1.5 MB of names in parts of at most 256 KiB: {parts}"
    );

    // A test case whose file all but fills the command's message (1 MiB): its
    // `test_case_defined`, the same file with the log record's fields and headers around it,
    // would be about 400 bytes past what NATS carries, and the relay would retry it forever.
    let test_case = json!({"test_case_id": uuid::Uuid::now_v7(), "name": "full",
                           "command": "pytest",
                           "files": [{"path": "big.txt", "content": "x".repeat(1_048_200)}]});
    let refused = client.send("define_test_case", ADMIN, test_case).await;
    let error = refused.error.expect("refused");
    assert_eq!(error.code.as_str(), "event_too_large", "{error:?}");
    assert!(
        error.message.contains("`test_case_defined`"),
        "{}",
        error.message
    );

    // What follows is recorded and published: nothing wedged the relay.
    let user = json!({"username": "after", "role": "member", "password": "member-password"});
    assert!(client.send("register_user", ADMIN, user).await.accepted);
    let head = lab.store.head().await.unwrap();
    eventually(
        Duration::from_secs(20),
        "the relay to publish the log",
        || async { (stream_sequence(&lab).await == head as u64).then_some(()) },
    )
    .await;
    handler.stop().await;
    lab.cleanup().await;
}
