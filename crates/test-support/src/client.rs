//! Publishing commands the way any NATS client would, and waiting for their outcomes. The
//! publishing is this module's own, not the bus's `CommandSender`, so that tests check the wire
//! contract itself; the lab fixtures build their commands from the payload types.

use crate::nats::TestNats;
use crate::sshd::TestSshd;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use runledger_bus::{Beat, BusNames, Liveness};
use runledger_types::command::{AddVenv, CommandPayload, RegisterMachine, RegisterUser};
use runledger_types::{
    CommandEnvelope, CommandId, Host, Line, MachineId, MachineName, Os, Outcome, OutgoingSecret,
    Port, RemoteUser, Role, RunId, Username, VenvId, VenvName,
};
use serde_json::Value;
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
        let envelope = CommandEnvelope {
            command_id,
            command_type: kind.to_owned(),
            actor: actor.to_owned(),
            correlation_id: None,
            causation_id: None,
            payload,
        };
        serde_json::to_value(envelope).expect("an envelope is JSON")
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

    /// Sends a typed command and fails the test unless it is accepted.
    pub async fn accept_command<C: CommandPayload>(&self, actor: &str, command: &C) -> Outcome {
        let payload = serde_json::to_value(command).expect("a payload is JSON");
        self.accept(C::TYPE.as_str(), actor, payload).await
    }

    /// Registers `username` as an admin (as `bootstrap`, which the first user may be).
    pub async fn register_admin(&self, username: &str) {
        let user = RegisterUser {
            username: Username::parse(username).expect("a valid username"),
            role: Role::Admin,
            password: OutgoingSecret::new(format!("{username}-password-1")),
        };
        self.accept_command("bootstrap", &user).await;
    }

    /// Registers a local machine named `here` as `admin`; returns its id.
    pub async fn register_local_machine(&self, admin: &str) -> Uuid {
        let machine_id = Uuid::now_v7();
        let machine = machine(machine_id, "here", "local", Port::SSH, "r", None);
        self.accept_command(admin, &machine).await;
        machine_id
    }

    /// Registers the machine behind `sshd`, with its password, as `admin`; returns its id.
    pub async fn register_sshd_machine(&self, admin: &str, sshd: &TestSshd) -> Uuid {
        let machine_id = Uuid::now_v7();
        let port = Port::parse(i64::from(sshd.port)).expect("a valid port");
        let password = Some(OutgoingSecret::new(sshd.password.clone()));
        let machine = machine(
            machine_id,
            "sshd",
            &sshd.host,
            port,
            &sshd.username,
            password,
        );
        self.accept_command(admin, &machine).await;
        machine_id
    }

    /// Adds a venv of `python` with a unique name on `machine_id` as `admin`; returns its id.
    pub async fn add_venv(&self, admin: &str, machine_id: Uuid, python: &str) -> Uuid {
        let venv_id = Uuid::now_v7();
        let name = format!("v{}", &venv_id.simple().to_string()[..12]);
        let venv = AddVenv {
            venv_id: VenvId::from(venv_id),
            machine_id: MachineId::from(machine_id),
            name: VenvName::parse(name).expect("a valid venv name"),
            path: None,
            python: Line::parse(python).expect("a valid interpreter"),
            requirements: Vec::new(),
        };
        self.accept_command(admin, &venv).await;
        venv_id
    }
}

/// A Linux machine's `register_machine` without labels or a pinned key.
fn machine(
    machine_id: Uuid,
    name: &str,
    host: &str,
    port: Port,
    username: &str,
    password: Option<OutgoingSecret>,
) -> RegisterMachine<OutgoingSecret> {
    RegisterMachine {
        machine_id: MachineId::from(machine_id),
        name: MachineName::parse(name).expect("a valid name"),
        host: Host::parse(host).expect("a valid host"),
        port,
        os: Os::Linux,
        username: RemoteUser::parse(username).expect("a valid user"),
        password,
        private_key: None,
        host_key: None,
        labels: Default::default(),
    }
}
