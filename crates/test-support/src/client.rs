//! Publishing commands the way any NATS client would, and waiting for their outcomes.

use crate::nats::TestNats;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use runledger_bus::BusNames;
use runledger_types::{CommandId, Outcome};
use serde_json::{Value, json};
use std::time::Duration;

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
}
