//! Shared fixtures for the end-to-end tests: a small lab registered through real commands.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use runledger_store::{AppendBatch, CommandRecord};
use runledger_test_support::CommandClient;
use runledger_types::event::ExecutorHeartbeat;
use runledger_types::{Actor, CommandId, Event, EventId, NewEvent, Outcome};
use serde_json::{Value, json};
use uuid::Uuid;

pub const ADMIN: &str = "admin";
pub const EXECUTOR: &str = "executor:e1";
pub const MACHINE_PASSWORD: &str = "machine-pw-do-not-leak";

/// Ids of the lab built by [`setup`].
#[derive(Debug, Clone)]
pub struct Fixture {
    pub machine_id: Uuid,
    pub venv_ids: Vec<Uuid>,
    pub test_case_id: Uuid,
}

pub fn accepted(outcome: &Outcome) -> &Outcome {
    assert!(outcome.accepted, "expected acceptance, got {outcome:?}");
    outcome
}

pub fn rejected_with(outcome: &Outcome, code: &str) {
    assert!(
        !outcome.accepted,
        "expected rejection {code}, got {outcome:?}"
    );
    let error = outcome.error.as_ref().expect("a rejection has an error");
    assert_eq!(error.code.as_str(), code, "{}", error.message);
    assert!(!error.message.is_empty());
}

pub fn event_types(outcome: &Outcome) -> Vec<&str> {
    outcome
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect()
}

/// An admin, a machine with `venvs` provisioned venvs, and a test case.
pub async fn setup(client: &CommandClient, venvs: usize) -> Fixture {
    accepted(
        &client
            .send(
                "register_user",
                "bootstrap",
                json!({"username": ADMIN, "role": "admin", "password": "admin-password"}),
            )
            .await,
    );
    let machine_id = Uuid::now_v7();
    accepted(
        &client
            .send(
                "register_machine",
                ADMIN,
                json!({"machine_id": machine_id, "name": "lab-1", "host": "127.0.0.1", "port": 2222,
                       "os": "linux", "username": "tester", "password": MACHINE_PASSWORD, "labels": ["linux", "x86"]}),
            )
            .await,
    );
    let mut venv_ids = Vec::new();
    for index in 0..venvs {
        let venv_id = Uuid::now_v7();
        accepted(
            &client
                .send("add_venv", ADMIN, json!({"venv_id": venv_id, "machine_id": machine_id, "name": format!("venv{index}")}))
                .await,
        );
        accepted(
            &client
                .send(
                    "report_venv_provisioned",
                    EXECUTOR,
                    json!({"venv_id": venv_id}),
                )
                .await,
        );
        venv_ids.push(venv_id);
    }
    let test_case_id = Uuid::now_v7();
    accepted(
        &client
            .send(
                "define_test_case",
                ADMIN,
                json!({"test_case_id": test_case_id, "name": "smoke", "command": "pytest -q", "timeout_s": 60,
                       "env_overridable": ["LEVEL"]}),
            )
            .await,
    );
    Fixture {
        machine_id,
        venv_ids,
        test_case_id,
    }
}

pub fn start_run(run_id: Uuid, fixture: &Fixture) -> Value {
    json!({"run_id": run_id, "test_case_id": fixture.test_case_id, "machine_id": fixture.machine_id})
}

/// An event to append straight to the log: version `version` of the heartbeat stream of
/// `writer` (store-level tests need events that no command produced).
pub fn heartbeat(writer: &str, version: i64) -> NewEvent {
    let event = Event::ExecutorHeartbeat(ExecutorHeartbeat {
        executor: writer.to_owned(),
        run_ids: vec![],
    });
    NewEvent {
        event_id: EventId::new(),
        stream_id: event.stream_id(),
        stream_version: version,
        event,
        recorded_at: chrono::Utc::now(),
        actor: Actor::parse("test").unwrap(),
        command_id: CommandId::new(),
        correlation_id: None,
        causation_id: None,
    }
}

/// One command's worth of `events`, to append straight to the log.
pub fn batch_of(events: Vec<NewEvent>, expected_head: Option<i64>) -> AppendBatch {
    let commands = vec![CommandRecord {
        command_id: CommandId::new(),
        command_type: "executor_heartbeat".into(),
        actor: "test".into(),
        events: 0..events.len(),
        rejection: None,
    }];
    AppendBatch {
        expected_head,
        events,
        commands,
    }
}
