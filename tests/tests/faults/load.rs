//! A steady stream of `start_run` commands, published as any NATS client would (JetStream, with
//! `Nats-Msg-Id`), whatever state the bus is in. Each command is remembered with whether the bus
//! acknowledged it: an acked command must take effect exactly once, an unacked one at most once.

use async_nats::jetstream::message::PublishMessage;
use runledger_test_support::TestLab;
use runledger_types::CommandId;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One `start_run` the load sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub command_id: CommandId,
    pub run_id: Uuid,
    /// JetStream stored it (a publish ack arrived).
    pub acked: bool,
}

/// The running load; [`Load::stop`] ends it and hands back what it sent.
pub struct Load {
    stop: CancellationToken,
    task: JoinHandle<()>,
    sent: Arc<Mutex<Vec<Sent>>>,
}

/// What the load asks for, and how often.
pub struct LoadPlan {
    pub test_case_id: Uuid,
    pub machine_id: Uuid,
    pub every: Duration,
}

impl Load {
    pub fn start(lab: &TestLab, plan: LoadPlan) -> Self {
        let stop = CancellationToken::new();
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let js = lab.nats.jetstream();
        let subject = lab.nats.names.command_subject("start_run");
        let (token, record) = (stop.clone(), Arc::clone(&sent));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(plan.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !token.is_cancelled() {
                tick.tick().await;
                let (command_id, run_id) = (CommandId::new(), Uuid::now_v7());
                let body = json!({"command_id": command_id, "type": "start_run", "actor": "admin",
                                  "payload": {"run_id": run_id, "test_case_id": plan.test_case_id,
                                              "machine_id": plan.machine_id}});
                let message = PublishMessage::build()
                    .payload(serde_json::to_vec(&body).expect("json").into())
                    .message_id(command_id.to_string());
                let publish = async {
                    let ack = js.send_publish(subject.clone(), message).await.ok()?;
                    ack.await.ok()
                };
                let ack = tokio::time::timeout(Duration::from_secs(3), publish).await;
                let acked = matches!(ack, Ok(Some(ack)) if !ack.duplicate);
                record.lock().expect("load record").push(Sent {
                    command_id,
                    run_id,
                    acked,
                });
            }
        });
        Self { stop, task, sent }
    }

    pub async fn stop(self) -> Vec<Sent> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the load stops within 10 s")
            .expect("the load task");
        let sent = self.sent.lock().expect("load record");
        sent.clone()
    }
}
