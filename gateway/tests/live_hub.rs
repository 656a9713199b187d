//! The gateway's live hub against a real NATS server: it passes on the run events the relay
//! published (stream sequence = position, header naming its log) and ignores anything else put
//! on an events subject.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_nats::jetstream::message::PublishMessage;
use runledger_gateway::live_hub::LiveHub;
use runledger_test_support::TestNats;
use runledger_types::LogId;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Publishes a run event record of `log` claiming `position`; returns its stream sequence.
async fn publish(nats: &TestNats, log: LogId, position: i64, text: &str, run_id: Uuid) -> u64 {
    let record = json!({"event_id": Uuid::now_v7(), "position": position,
        "stream_id": format!("run-{run_id}"), "stream_version": position, "type": "run_output",
        "schema_version": 1, "recorded_at": "2026-12-04T00:00:00Z", "actor": "executor:e1",
        "command_id": Uuid::now_v7(),
        "data": {"run_id": run_id, "seq": position, "stream": "stdout", "text": text}});
    let message = PublishMessage::build()
        .payload(serde_json::to_vec(&record).unwrap().into())
        .header(runledger_bus::LOG_HEADER, log.to_string());
    let subject = nats.names.event_subject("run", "run_output");
    let ack = nats
        .jetstream()
        .send_publish(subject, message)
        .await
        .unwrap()
        .await
        .unwrap();
    ack.sequence
}

#[tokio::test]
async fn the_hub_passes_on_only_what_the_relay_published() {
    let nats = TestNats::create().await;
    runledger_bus::ensure_streams(&nats.jetstream(), &nats.names)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let log = LogId::new();
    let hub = LiveHub::start(&nats.client, &nats.names, log, shutdown.clone()).await;
    let mut events = hub.subscribe();
    let run_id = Uuid::now_v7();
    assert_eq!(publish(&nats, log, 1, "genuine 1\n", run_id).await, 1);
    // Forged: claims a position that is not its sequence (2).
    assert_eq!(publish(&nats, log, 7, "FORGED\n", run_id).await, 2);
    // Another log's event, at the right sequence.
    assert_eq!(
        publish(&nats, LogId::new(), 3, "FOREIGN\n", run_id).await,
        3
    );
    assert_eq!(publish(&nats, log, 4, "genuine 4\n", run_id).await, 4);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("in time")
            .unwrap();
        seen.push((
            event.position,
            event.data["text"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        seen,
        [(1, "genuine 1\n".to_owned()), (4, "genuine 4\n".to_owned())]
    );
    shutdown.cancel();
    nats.cleanup().await;
}
