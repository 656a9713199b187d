//! The handler end to end: commands over JetStream, events in Postgres, outcomes on NATS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use runledger_test_support::{CommandClient, TestLab};
use runledger_types::{CommandId, StreamId};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_run_goes_through_its_whole_lifecycle() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let fixture = setup(&client, 1).await;

    let run_id = Uuid::now_v7();
    let started = client
        .send("start_run", ADMIN, start_run(run_id, &fixture))
        .await;
    assert_eq!(
        event_types(accepted(&started)),
        ["run_requested", "venv_leased", "run_assigned"]
    );
    let positions: Vec<i64> = started.events.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[1] == w[0] + 1),
        "{positions:?}"
    );
    assert_eq!(started.events[0].stream_id, format!("run-{run_id}"));

    let queued_id = Uuid::now_v7();
    let queued = client
        .send("start_run", ADMIN, start_run(queued_id, &fixture))
        .await;
    assert_eq!(event_types(&queued), ["run_requested", "run_queued"]);

    accepted(
        &client
            .send("report_run_started", EXECUTOR, json!({"run_id": run_id}))
            .await,
    );
    let output = json!({"run_id": run_id, "seq": 1, "stream": "stdout", "text": "1 passed\n"});
    assert_eq!(
        event_types(
            &client
                .send("report_run_output", EXECUTOR, output.clone())
                .await
        ),
        ["run_output"]
    );
    assert!(
        event_types(accepted(
            &client.send("report_run_output", EXECUTOR, output).await
        ))
        .is_empty()
    );
    let finished = client
        .send(
            "report_run_finished",
            EXECUTOR,
            json!({"run_id": run_id, "status": "passed", "exit_code": 0,
                   "summary": {"passed": 1, "failed": 0, "skipped": 0, "errors": 0}}),
        )
        .await;
    // The freed venv goes straight to the queued run.
    assert_eq!(
        event_types(accepted(&finished)),
        [
            "run_finished",
            "venv_released",
            "venv_leased",
            "run_assigned"
        ]
    );
    assert_eq!(finished.events[3].stream_id, format!("run-{queued_id}"));

    let cancelled = client
        .send(
            "cancel_run",
            ADMIN,
            json!({"run_id": queued_id, "reason": "demo"}),
        )
        .await;
    assert_eq!(event_types(accepted(&cancelled))[0], "run_finished");
    rejected_with(
        &client
            .send("cancel_run", ADMIN, json!({"run_id": queued_id}))
            .await,
        "run_finished",
    );

    // The log holds exactly what the outcomes said, and no credential in clear.
    let log = lab.store.read_after(0, 10_000).await.unwrap();
    assert_eq!(log.len() as i64, lab.store.head().await.unwrap());
    let run_events: Vec<_> = lab
        .store
        .read_stream(&StreamId::run(run_id.into()))
        .await
        .unwrap();
    let types: Vec<_> = run_events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "run_requested",
            "run_assigned",
            "run_started",
            "run_output",
            "run_finished"
        ]
    );
    assert!(
        run_events
            .iter()
            .all(|e| e.actor == ADMIN || e.actor == EXECUTOR)
    );
    let raw = serde_json::to_string(&log).unwrap();
    assert!(
        !raw.contains(MACHINE_PASSWORD),
        "a machine password reached the log in clear"
    );
    assert!(
        !raw.contains("admin-password"),
        "a user password reached the log in clear"
    );
    assert!(raw.contains("aes-256-gcm") && raw.contains("$argon2id$"));

    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn machine_and_venv_management_commands_are_accepted() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let fixture = setup(&client, 1).await;
    let machine = fixture.machine_id;
    let fingerprint = format!("SHA256:{}", "Q".repeat(43));

    let updated = client
        .send("update_machine", ADMIN, json!({"machine_id": machine, "labels": ["gpu"], "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"}))
        .await;
    assert_eq!(event_types(accepted(&updated)), ["machine_updated"]);
    let pinned = client
        .send(
            "report_host_key",
            EXECUTOR,
            json!({"machine_id": machine, "fingerprint": fingerprint}),
        )
        .await;
    assert_eq!(event_types(accepted(&pinned)), ["host_key_pinned"]);
    let other = format!("SHA256:{}", "R".repeat(43));
    rejected_with(
        &client
            .send(
                "report_host_key",
                EXECUTOR,
                json!({"machine_id": machine, "fingerprint": other}),
            )
            .await,
        "host_key_mismatch",
    );
    // Liveness is not history: heartbeats are no command any more, so they reach no log.
    rejected_with(
        &client
            .send("executor_heartbeat", EXECUTOR, json!({"run_ids": []}))
            .await,
        "unknown_command_type",
    );
    let venv = fixture.venv_ids[0];
    assert_eq!(
        event_types(accepted(
            &client
                .send("remove_venv", ADMIN, json!({"venv_id": venv}))
                .await
        )),
        ["venv_removed"]
    );
    assert_eq!(
        event_types(accepted(
            &client
                .send("retire_machine", ADMIN, json!({"machine_id": machine}))
                .await
        )),
        ["machine_retired"]
    );
    rejected_with(
        &client
            .send("start_run", ADMIN, start_run(Uuid::now_v7(), &fixture))
            .await,
        "machine_retired",
    );
    let raw = serde_json::to_string(&lab.store.read_after(0, 10_000).await.unwrap()).unwrap();
    assert!(
        !raw.contains("BEGIN OPENSSH"),
        "a private key reached the log in clear"
    );
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn a_command_takes_effect_once_even_after_the_dedupe_window() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let fixture = setup(&client, 1).await;
    let command_id = CommandId::new();
    let payload = start_run(Uuid::now_v7(), &fixture);

    let first = client
        .send_with_id(command_id, "start_run", ADMIN, payload.clone())
        .await;
    accepted(&first);
    // Same Nats-Msg-Id: JetStream drops it within its window; the handler never sees it.
    // A different Nats-Msg-Id with the same command_id is what a resend after the window looks like.
    let mut outcome = client.outcome_subscription(command_id).await;
    let body = serde_json::to_vec(&CommandClient::body(
        command_id,
        "start_run",
        ADMIN,
        payload,
    ))
    .unwrap();
    client
        .publish_raw("start_run", Some("resent-after-window"), body.clone())
        .await;
    client.publish_raw("start_run", None, body).await;
    assert_eq!(CommandClient::next_outcome(&mut outcome).await, first);
    assert_eq!(CommandClient::next_outcome(&mut outcome).await, first);

    let head = lab.store.head().await.unwrap();
    assert_eq!(
        first.last_position(),
        Some(head),
        "no event was appended twice"
    );
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn every_kind_of_bad_input_is_answered_recorded_and_survived() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let fixture = setup(&client, 1).await;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("start_run", b"{not json".to_vec(), "malformed_json"),
        ("start_run", b"[1,2]".to_vec(), "invalid_envelope"),
        ("start_run", br#"{"type":"start_run","actor":"a","payload":{}}"#.to_vec(), "invalid_envelope"),
        ("start_run", br#"{"command_id":"nope","type":"start_run","actor":"a","payload":{}}"#.to_vec(), "invalid_envelope"),
        ("launch_rocket", br#"{"command_id":"0193a000-0000-7000-8000-00000000aaaa","type":"launch_rocket","actor":"a","payload":{}}"#.to_vec(), "unknown_command_type"),
        ("start_run", br#"{"command_id":"0193a000-0000-7000-8000-00000000bbbb","type":"cancel_run","actor":"a","payload":{}}"#.to_vec(), "type_mismatch"),
        ("start_run", br#"{"command_id":"0193a000-0000-7000-8000-00000000cccc","type":"start_run","payload":{}}"#.to_vec(), "invalid_envelope"),
    ];
    for (index, (subject_type, body, code)) in cases.into_iter().enumerate() {
        let msg_id = Uuid::now_v7();
        // The answer goes to the body's command_id when it has one, else to the Nats-Msg-Id.
        let answer_to = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("command_id")
                    .and_then(|id| id.as_str())
                    .and_then(|id| Uuid::parse_str(id).ok())
            })
            .unwrap_or(msg_id);
        let mut outcome = client.outcome_subscription(CommandId(answer_to)).await;
        client
            .publish_raw(subject_type, Some(&msg_id.to_string()), body)
            .await;
        let answer = CommandClient::next_outcome(&mut outcome).await;
        assert_eq!(answer.command_id.0, answer_to, "case {index}");
        rejected_with(&answer, code);
        let recorded = lab
            .store
            .read_stream(&StreamId::command(CommandId(answer_to)))
            .await
            .unwrap();
        assert_eq!(recorded.len(), 1, "case {index}: rejection recorded");
        assert_eq!(recorded[0].event_type, "command_rejected");
        assert_eq!(recorded[0].data["error"]["code"], code);
    }

    let invalid = [
        (
            "register_machine",
            json!({"machine_id": Uuid::now_v7(), "name": "m", "host": "h", "port": 0, "username": "u", "password": "p"}),
            "payload.port",
        ),
        (
            "register_machine",
            json!({"machine_id": Uuid::now_v7(), "name": "m", "host": "bad host", "username": "u", "password": "p"}),
            "payload.host",
        ),
        (
            "register_machine",
            json!({"machine_id": Uuid::now_v7(), "name": "m", "host": "h", "os": "beos", "username": "u", "password": "p"}),
            "payload.os",
        ),
        (
            "start_run",
            json!({"run_id": "x", "test_case_id": fixture.test_case_id}),
            "payload.run_id",
        ),
        (
            "define_test_case",
            json!({"test_case_id": Uuid::now_v7(), "name": "t", "command": "c", "timeout_s": 0}),
            "payload.timeout_s",
        ),
        (
            "start_run",
            json!({"run_id": Uuid::now_v7(), "test_case_id": fixture.test_case_id, "surprise": 1}),
            "surprise",
        ),
    ];
    for (kind, payload, mentions) in invalid {
        let outcome = client.send(kind, ADMIN, payload).await;
        rejected_with(&outcome, "invalid_payload");
        assert!(
            outcome.error.unwrap().message.contains(mentions),
            "{kind}: message names {mentions}"
        );
    }
    // A mistyped secret is refused without being repeated anywhere.
    let leaky = json!({"machine_id": Uuid::now_v7(), "name": "m", "host": "h", "username": "u", "password": 98765432});
    let outcome = client.send("register_machine", ADMIN, leaky).await;
    rejected_with(&outcome, "invalid_payload");
    assert!(
        !serde_json::to_string(&outcome)
            .unwrap()
            .contains("98765432")
    );
    let log = serde_json::to_string(&lab.store.read_after(0, 10_000).await.unwrap()).unwrap();
    assert!(
        !log.contains("98765432"),
        "a mistyped password reached the log"
    );
    rejected_with(
        &client
            .send(
                "start_run",
                ADMIN,
                json!({"run_id": Uuid::now_v7(), "test_case_id": Uuid::now_v7()}),
            )
            .await,
        "unknown_test_case",
    );
    rejected_with(
        &client
            .send(
                "report_run_started",
                ADMIN,
                json!({"run_id": Uuid::now_v7()}),
            )
            .await,
        "forbidden",
    );

    // The handler is still there and still correct.
    let ok = client
        .send("start_run", ADMIN, start_run(Uuid::now_v7(), &fixture))
        .await;
    assert_eq!(
        event_types(accepted(&ok)),
        ["run_requested", "venv_leased", "run_assigned"]
    );
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn commands_published_while_no_handler_runs_are_handled_later() {
    let lab = TestLab::create().await;
    let client = lab.client();
    let mut waiting = Vec::new();
    for index in 0..20 {
        let id = CommandId::new();
        let subscription = client.outcome_subscription(id).await;
        let payload = json!({"username": format!("user{index}"), "role": "member", "password": "member-password"});
        client
            .publish(id, "register_user", "bootstrap", payload)
            .await;
        waiting.push((id, subscription));
    }
    let handler = lab.start_handler().await;
    for (id, mut subscription) in waiting {
        let outcome = CommandClient::next_outcome(&mut subscription).await;
        assert_eq!(outcome.command_id, id);
        assert_eq!(event_types(accepted(&outcome)), ["user_registered"]);
    }
    assert_eq!(lab.store.head().await.unwrap(), 20);
    handler.stop().await;
    lab.cleanup().await;
}
