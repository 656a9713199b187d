//! One subscription to the run events per gateway process, fanned out to every live stream
//! (`GET /api/v1/runs/{id}/log` as SSE, `GET /api/v1/events/stream`): each event crosses NATS
//! and is parsed once, however many dashboards are open. A stream that falls more than
//! [`CAPACITY`] events behind is told so ([`broadcast::error::RecvError::Lagged`]); a log
//! stream then reads what it missed from the log.

use async_nats::Client;
use futures::StreamExt;
use runledger_bus::BusNames;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Run events kept for streams that are behind. Output chunks are up to 64 KiB: at most
/// ≈ 16 MiB held.
pub const CAPACITY: usize = 256;

/// One event of the `run` streams, as the relay published it.
#[derive(Debug)]
pub struct RunEvent {
    /// Its type (`run_output`, `run_finished`, …).
    pub event_type: String,
    /// The run it is about.
    pub run_id: Option<Uuid>,
    /// Its log position.
    pub position: i64,
    /// Its data.
    pub data: Value,
}

/// The fan-out: subscribe to receive every run event from now on.
#[derive(Debug, Clone)]
pub struct LiveHub {
    events: broadcast::Sender<Arc<RunEvent>>,
}

impl LiveHub {
    /// Subscribes to the run events and passes them on until `shutdown`. (async-nats renews the
    /// subscription after a reconnect; events published while disconnected are missed here as
    /// by any core NATS subscriber, and a log stream's `Last-Event-ID` resume recovers them.)
    pub async fn start(
        nats: &Client,
        names: &BusNames,
        shutdown: CancellationToken,
    ) -> Result<Self, async_nats::SubscribeError> {
        let mut subscriber = nats
            .subscribe(format!("{}.events.run.*", names.prefix()))
            .await?;
        let (events, _) = broadcast::channel(CAPACITY);
        let sender = events.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => return,
                    message = subscriber.next() => message,
                };
                let Some(message) = message else {
                    tracing::warn!(
                        "the run events subscription ended; live streams get nothing new"
                    );
                    return;
                };
                if let Some(event) = parse(&message.payload) {
                    // No receiver is fine: nobody is watching right now.
                    let _ = sender.send(Arc::new(event));
                }
            }
        });
        Ok(Self { events })
    }

    /// Every run event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunEvent>> {
        self.events.subscribe()
    }
}

fn parse(payload: &[u8]) -> Option<RunEvent> {
    let mut record: Value = serde_json::from_slice(payload).ok()?;
    let event_type = record["type"].as_str()?.to_owned();
    let data = record["data"].take();
    let run_id = data["run_id"].as_str().and_then(|id| id.parse().ok());
    Some(RunEvent {
        event_type,
        run_id,
        position: record["position"].as_i64().unwrap_or(0),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_relay_publishes_and_skips_the_rest() {
        let run_id = Uuid::now_v7();
        let payload = serde_json::json!({"type": "run_output", "position": 7,
            "data": {"run_id": run_id, "seq": 1, "stream": "stdout", "text": "hi\n"}});
        let event = parse(payload.to_string().as_bytes()).expect("parsed");
        assert_eq!(
            (event.event_type.as_str(), event.run_id, event.position),
            ("run_output", Some(run_id), 7)
        );
        assert_eq!(event.data["text"], "hi\n");
        assert!(parse(b"not json").is_none());
        assert!(parse(br#"{"position": 1}"#).is_none());
    }
}
