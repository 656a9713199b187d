//! Publishing commands the way any NATS client would, and waiting for their outcomes.

use crate::nats::TestNats;
use crate::sshd::TestSshd;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use runledger_bus::{Beat, BusNames, Liveness};
use runledger_types::{CommandId, Outcome, RunId};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Sends commands through JetStream with `Nats-Msg-Id`, like an external caller.
#[derive(Debug, Clone)]
pub struct CommandClient {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    names: BusNames,
}

impl CommandClient {
    /// A client in the test's namespace.
    pub fn new(nats: &TestNats) -> Self {
        Self {
            client: nats.client.clone(),
            js: nats.jetstream(),
            names: nats.names.clone(),
        }
    }

    /// The command body the contract describes.
    pub fn body(command_id: CommandId, kind: &str, actor: &str, payload: Value) -> Value {
        json!({"command_id": command_id, "type": kind, "actor": actor, "payload": payload})
    }

    /// Publishes raw bytes on `<prefix>.commands.<kind>` with an optional message id.
    pub async fn publish_raw(&self, kind: &str, msg_id: Option<&str>, body: Vec<u8>) {
        let mut message = PublishMessage::build().payload(body.into());
        if let Some(id) = msg_id {
            message = message.message_id(id);
        }
        self.js
            .send_publish(self.names.command_subject(kind), message)
            .await
            .expect("publish")
            .await
            .expect("stored by JetStream");
    }

    /// Publishes a command without waiting for its outcome.
    pub async fn publish(&self, command_id: CommandId, kind: &str, actor: &str, payload: Value) {
        let body = serde_json::to_vec(&Self::body(command_id, kind, actor, payload)).expect("json");
        self.publish_raw(kind, Some(&command_id.to_string()), body)
            .await;
    }

    /// Writes a liveness beat of `executor` holding `run_ids`, as an executor process does, so
    /// a test playing an executor keeps its lease.
    pub async fn beat(&self, executor: &str, run_ids: Vec<RunId>) {
        let liveness = Liveness::open(&self.js, &self.names)
            .await
            .expect("the liveness bucket opens");
        let beat = Beat {
            executor: executor.to_owned(),
            run_ids,
        };
        liveness.beat(&beat).await.expect("the beat is written");
    }

    /// Subscribes to the outcome of `command_id` (do this before publishing).
    pub async fn outcome_subscription(&self, command_id: CommandId) -> async_nats::Subscriber {
        let subscriber = self
            .client
            .subscribe(self.names.outcome_subject(command_id))
            .await
            .expect("subscribe");
        self.client.flush().await.expect("flush");
        subscriber
    }

    /// Waits for one outcome on a subscription.
    pub async fn next_outcome(subscriber: &mut async_nats::Subscriber) -> Outcome {
        let message = tokio::time::timeout(Duration::from_secs(20), subscriber.next())
            .await
            .expect("an outcome within 20 s")
            .expect("subscription open");
        serde_json::from_slice(&message.payload).expect("outcome JSON")
    }

    /// Sends a command with a fresh id and waits for its outcome.
    pub async fn send(&self, kind: &str, actor: &str, payload: Value) -> Outcome {
        self.send_with_id(CommandId::new(), kind, actor, payload)
            .await
    }

    /// Sends a command with the given id and waits for its outcome.
    pub async fn send_with_id(
        &self,
        command_id: CommandId,
        kind: &str,
        actor: &str,
        payload: Value,
    ) -> Outcome {
        let mut subscriber = self.outcome_subscription(command_id).await;
        self.publish(command_id, kind, actor, payload).await;
        Self::next_outcome(&mut subscriber).await
    }

    /// Sends a command and fails the test unless it is accepted.
    pub async fn accept(&self, kind: &str, actor: &str, payload: Value) -> Outcome {
        let outcome = self.send(kind, actor, payload).await;
        assert!(outcome.accepted, "{kind} as {actor}: {outcome:?}");
        outcome
    }

    /// Registers `username` as an admin (as `bootstrap`, which the first user may be).
    pub async fn register_admin(&self, username: &str) {
        let user = json!({"username": username, "role": "admin",
                          "password": format!("{username}-password-1")});
        self.accept("register_user", "bootstrap", user).await;
    }

    /// Registers a local machine named `here` as `admin`; returns its id.
    pub async fn register_local_machine(&self, admin: &str) -> Uuid {
        let machine_id = Uuid::now_v7();
        let machine =
            json!({"machine_id": machine_id, "name": "here", "host": "local", "username": "r"});
        self.accept("register_machine", admin, machine).await;
        machine_id
    }

    /// Registers the machine behind `sshd`, with its password, as `admin`; returns its id.
    pub async fn register_sshd_machine(&self, admin: &str, sshd: &TestSshd) -> Uuid {
        let machine_id = Uuid::now_v7();
        let machine = json!({"machine_id": machine_id, "name": "sshd", "host": sshd.host,
                             "port": sshd.port, "username": sshd.username,
                             "password": sshd.password});
        self.accept("register_machine", admin, machine).await;
        machine_id
    }

    /// Adds a venv of `python` with a unique name on `machine_id` as `admin`; returns its id.
    pub async fn add_venv(&self, admin: &str, machine_id: Uuid, python: &str) -> Uuid {
        let venv_id = Uuid::now_v7();
        let venv = json!({"venv_id": venv_id, "machine_id": machine_id,
                          "name": format!("v{}", &venv_id.simple().to_string()[..12]),
                          "python": python});
        self.accept("add_venv", admin, venv).await;
        venv_id
    }
}
