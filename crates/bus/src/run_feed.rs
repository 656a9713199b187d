//! One run's output and end as NATS carries them, for readers that follow a run live (the
//! gateway's log stream, `runledger run start --follow`). Subscribe first, then read what the
//! log already holds, then take from the feed: nothing committed in between is missed.

use crate::names::BusNames;
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

/// A run's `run_output` and `run_finished` events from the events subjects.
pub struct RunFeed {
    run_id: Value,
    output: async_nats::Subscriber,
    finished: async_nats::Subscriber,
}

/// One event of the followed run.
#[derive(Debug, Clone, PartialEq)]
pub struct FedEvent {
    /// `run_output` or `run_finished`.
    pub event_type: String,
    /// Its log position.
    pub position: i64,
    /// Its data.
    pub data: Value,
}

impl RunFeed {
    /// Subscribes to every run's output and ends; [`next`](Self::next) keeps `run_id`'s.
    pub async fn subscribe(
        client: &async_nats::Client,
        names: &BusNames,
        run_id: Uuid,
    ) -> Result<Self, async_nats::SubscribeError> {
        let output = client
            .subscribe(names.event_subject("run", "run_output"))
            .await?;
        let finished = client
            .subscribe(names.event_subject("run", "run_finished"))
            .await?;
        Ok(Self {
            run_id: serde_json::json!(run_id),
            output,
            finished,
        })
    }

    /// The run's next event; `None` once the subscriptions end.
    pub async fn next(&mut self) -> Option<FedEvent> {
        loop {
            let message = tokio::select! {
                message = self.output.next() => message,
                message = self.finished.next() => message,
            }?;
            let Ok(mut record) = serde_json::from_slice::<Value>(&message.payload) else {
                continue;
            };
            if record["data"]["run_id"] != self.run_id {
                continue;
            }
            return Some(FedEvent {
                event_type: record["type"].as_str().unwrap_or_default().to_owned(),
                position: record["position"].as_i64().unwrap_or(0),
                data: record["data"].take(),
            });
        }
    }
}
