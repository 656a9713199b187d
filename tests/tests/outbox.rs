//! The outbox relay: committed events reach RUNLEDGER_EVENTS in log order, stream sequence =
//! position, with no gap or duplicate across a graceful restart and a crash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{CommandClient, TestLab, eventually};
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

/// A decision with an event too large for one NATS message (a sharded group of a suite of
/// 14,000 tests: its plan names every test) is refused with `event_too_large`, and the relay,
/// which could never publish such an event, goes on publishing what follows.
#[tokio::test]
async fn a_decision_too_large_for_one_message_is_refused_and_the_relay_goes_on() {
    const ADMIN: &str = "admin";
    const EXECUTOR: &str = "executor:history";
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let accepted = |outcome: runledger_types::Outcome| assert!(outcome.accepted, "{outcome:?}");
    let user = json!({"username": ADMIN, "role": "admin", "password": "admin-password"});
    accepted(client.send("register_user", "bootstrap", user).await);
    let test_case_id = uuid::Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "large suite",
                           "command": "pytest -q --junitxml=junit.xml", "junit_xml": "junit.xml"});
    accepted(client.send("define_test_case", ADMIN, test_case).await);
    let machine_id = uuid::Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "history", "host": "local",
                         "username": "runner"});
    accepted(client.send("register_machine", ADMIN, machine).await);
    let venv_id = uuid::Uuid::now_v7();
    let venv = json!({"venv_id": venv_id, "machine_id": machine_id, "name": "history"});
    accepted(client.send("add_venv", ADMIN, venv).await);
    let provisioned = json!({"venv_id": venv_id});
    accepted(
        client
            .send("report_venv_provisioned", EXECUTOR, provisioned)
            .await,
    );
    let run_id = uuid::Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": test_case_id, "venv_id": venv_id});
    accepted(client.send("start_run", ADMIN, start).await);
    let started = json!({"run_id": run_id});
    accepted(client.send("report_run_started", EXECUTOR, started).await);
    // The whole suite's results, in parts of 2,000 as an executor sends a large report.
    let tests: Vec<_> = (0..14_000)
        .map(|i| {
            json!({"classname": "tests.test_suite_module_with_a_long_name",
                   "name": format!("test_case_with_a_descriptive_name_{i:05}"),
                   "status": "passed", "duration_ms": 10 + i % 90})
        })
        .collect();
    for (part, chunk) in tests.chunks(2_000).enumerate() {
        let report = json!({"run_id": run_id, "part": part + 1, "tests": chunk});
        accepted(client.send("report_run_tests", EXECUTOR, report).await);
    }
    let summary = json!({"passed": tests.len(), "failed": 0, "skipped": 0, "errors": 0});
    let finished = json!({"run_id": run_id, "status": "passed", "exit_code": 0,
                          "summary": summary});
    accepted(client.send("report_run_finished", EXECUTOR, finished).await);

    let group = json!({"group_id": uuid::Uuid::now_v7(), "test_case_id": test_case_id,
                       "shards": 4});
    let refused = client.send("start_group", ADMIN, group).await;
    let error = refused.error.expect("refused");
    assert_eq!(error.code.as_str(), "event_too_large", "{error:?}");
    assert!(
        error.message.contains("`group_started`"),
        "{}",
        error.message
    );

    // What follows is recorded and published: the refusal did not wedge the relay.
    let user = json!({"username": "after", "role": "member", "password": "member-password"});
    accepted(client.send("register_user", ADMIN, user).await);
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
