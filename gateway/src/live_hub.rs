//! One consumer of the run and group events per gateway process, fanned out to every live stream
//! (`GET /api/v1/runs/{id}/log` as SSE, `GET /api/v1/events/stream`): each event crosses NATS
//! and is parsed once, however many dashboards are open. A stream that falls more than
//! [`CAPACITY`] events behind is told so ([`broadcast::error::RecvError::Lagged`]); a log
//! stream then reads what it missed from the log.
//!
//! The events are read from the events stream (a JetStream ordered consumer), not from a plain
//! subscription: a message is passed on only when its stream sequence equals the position it
//! claims, which is how the relay publishes every event. Anything else published on an events
//! subject (a forged run output, say) never reaches a dashboard, and neither does an event of
//! another log (its `Runledger-Log` header names another log, or none). A consumer that fails is
//! created again from the sequence after the last one seen, so a reconnect misses nothing.

use async_nats::Client;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use runledger_bus::{BusNames, LOG_HEADER};
use runledger_types::LogId;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Run events kept for streams that are behind. Output chunks are up to 64 KiB: at most
/// ≈ 16 MiB held.
pub const CAPACITY: usize = 256;

/// How long the hub waits before it tries again to follow the events stream.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One event of the `run` streams, as the relay published it.
#[derive(Debug)]
pub struct RunEvent {
    /// Its type (`run_output`, `run_finished`, …).
    pub event_type: String,
    /// The run it is about.
    pub run_id: Option<Uuid>,
    /// The group it is about (a group's event, or a member's `run_requested`).
    pub group_id: Option<Uuid>,
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
    /// Follows the run events from now on and passes them on until `shutdown`. The first
    /// consumer is created before this returns (when the stream exists), so an event published
    /// after it reaches the streams opened after it; otherwise the hub keeps trying.
    /// Only events of `log` are passed on.
    pub async fn start(
        nats: &Client,
        names: &BusNames,
        log: LogId,
        shutdown: CancellationToken,
    ) -> Self {
        let js = runledger_bus::jetstream(nats.clone());
        let (events, _) = broadcast::channel(CAPACITY);
        let sender = events.clone();
        let (stream, filter) = (
            names.events_stream(),
            format!("{}.events.>", names.prefix()),
        );
        let first = match follow(&js, &stream, &filter, consumer::DeliverPolicy::New).await {
            Ok(messages) => Some(messages),
            Err(error) => {
                tracing::warn!(%error, "cannot follow the run events yet; retrying");
                None
            }
        };
        tokio::spawn(async move {
            let mut last_sequence = None;
            let mut messages = first;
            loop {
                if let Some(open) = messages.take() {
                    let ended = tokio::select! {
                        () = shutdown.cancelled() => return,
                        ended = pass_on(open, &sender, log, &mut last_sequence) => ended,
                    };
                    tracing::warn!(reason = %ended, "the run events consumer ended; following again");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                }
                let policy = match last_sequence {
                    Some(last) => consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: last + 1,
                    },
                    None => consumer::DeliverPolicy::New,
                };
                match follow(&js, &stream, &filter, policy).await {
                    Ok(open) => messages = Some(open),
                    Err(error) => tracing::warn!(%error, "cannot follow the run events yet"),
                }
            }
        });
        Self { events }
    }

    /// Every run event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunEvent>> {
        self.events.subscribe()
    }
}

/// An ordered consumer of the run events on `stream`.
async fn follow(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
    deliver_policy: consumer::DeliverPolicy,
) -> Result<consumer::pull::Ordered, String> {
    let config = consumer::pull::OrderedConfig {
        filter_subject: filter.to_owned(),
        deliver_policy,
        ..Default::default()
    };
    js.get_stream(stream)
        .await
        .map_err(|err| err.to_string())?
        .create_consumer(config)
        .await
        .map_err(|err| err.to_string())?
        .messages()
        .await
        .map_err(|err| err.to_string())
}

/// Passes every genuine event of `messages` to `sender` until the consumer ends; says why.
async fn pass_on(
    mut messages: consumer::pull::Ordered,
    sender: &broadcast::Sender<Arc<RunEvent>>,
    log: LogId,
    last_sequence: &mut Option<u64>,
) -> String {
    loop {
        let message = match messages.next().await {
            Some(Ok(message)) => message,
            Some(Err(error)) => return error.to_string(),
            None => return "no more messages".to_owned(),
        };
        let Ok(info) = message.info() else {
            continue;
        };
        let sequence = info.stream_sequence;
        *last_sequence = Some(sequence);
        if !of_runs_or_groups(&message.subject) {
            continue;
        }
        if !of_log(message.headers.as_ref(), log) {
            tracing::error!(sequence, %log, "ignoring a run event of another log");
            continue;
        }
        match parse(&message.payload) {
            Some(event) if u64::try_from(event.position).ok() == Some(sequence) => {
                // No receiver is fine: nobody is watching right now.
                let _ = sender.send(Arc::new(event));
            }
            Some(event) => tracing::error!(
                position = event.position,
                sequence,
                "ignoring a run event whose position is not its stream sequence: the relay did not publish it"
            ),
            None => tracing::warn!(sequence, "ignoring an unreadable run event"),
        }
    }
}

/// Whether an event subject (`<prefix>.events.<stream type>.<event type>`) is of a run's or a
/// group's stream: the only events live streams pass on.
fn of_runs_or_groups(subject: &str) -> bool {
    let mut tokens = subject.rsplit('.');
    let _event_type = tokens.next();
    matches!(tokens.next(), Some("run" | "group"))
}

/// Whether a message names `log` in its `Runledger-Log` header. The hub follows only new
/// events, which the relay publishes with the header: one without it is not this log's.
fn of_log(headers: Option<&async_nats::HeaderMap>, log: LogId) -> bool {
    headers
        .and_then(|headers| headers.get(LOG_HEADER))
        .and_then(|value| value.as_str().parse::<LogId>().ok())
        == Some(log)
}

fn parse(payload: &[u8]) -> Option<RunEvent> {
    let mut record: Value = serde_json::from_slice(payload).ok()?;
    let event_type = record["type"].as_str()?.to_owned();
    let data = record["data"].take();
    let run_id = data["run_id"].as_str().and_then(|id| id.parse().ok());
    let group_id = data["group_id"]
        .as_str()
        .or_else(|| data["group"]["group_id"].as_str())
        .and_then(|id| id.parse().ok());
    Some(RunEvent {
        event_type,
        run_id,
        group_id,
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
