//! Live views as Server-Sent Events, fed from the events NATS carries (never by polling
//! Postgres): a run's output (`GET /api/v1/runs/{run_id}/log` with `Accept: text/event-stream`)
//! and every run's status changes (`GET /api/v1/events/stream`).
//!
//! Both take their events from the gateway's one [`LiveHub`](crate::live_hub::LiveHub)
//! subscription. A log stream subscribes first, then sends what the log already holds after the
//! client's `Last-Event-ID` (a chunk `seq`), page by page, then what arrives, skipping chunks
//! already sent; so nothing committed in between is lost, and a stream that falls behind the hub
//! reads what it missed from the log. It ends with a `finished` event carrying the run's final
//! status and the event's log position (for `min_position`).

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use runledger_readmodel::PgPool;
use runledger_readmodel::runs as run_reads;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Events buffered per client before a slow one is dropped.
const CLIENT_BUFFER: usize = 256;

/// True when the request asks for Server-Sent Events.
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// The `seq` to resume after: `Last-Event-ID`, else 0.
pub fn last_event_id(headers: &HeaderMap) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(0),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|raw| raw.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID: must be a chunk seq (a number)")),
    }
}

type EventStream = Sse<
    axum::response::sse::KeepAliveStream<
        std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>,
    >,
>;

fn sse(receiver: mpsc::Receiver<Event>) -> EventStream {
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Sse::new(stream.boxed()).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Output chunks read from the log at a time (the history, and what a lagging stream missed).
const HISTORY_PAGE: i64 = 256;

/// The output of `run_id` from after chunk `after`, live, ending with its final status.
pub async fn run_log(state: AppState, run_id: Uuid, after: u64) -> Result<EventStream, ApiError> {
    // Subscribed first: whatever the log holds now, or NATS delivers from here on, is seen.
    let mut events = state.live.subscribe();
    let store = state.pool.clone();
    if !run_reads::run_in_log(&store, run_id).await? {
        return Err(ApiError::not_found(format!("no run {run_id}")));
    }
    let (sender, receiver) = mpsc::channel(CLIENT_BUFFER);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut last = after;
        if !from_the_log(&store, run_id, &sender, &mut last).await {
            return;
        }
        loop {
            let received = tokio::select! {
                () = sender.closed() => return,
                () = shutdown.cancelled() => return,
                received = events.recv() => received,
            };
            let more = match received {
                Ok(event) if event.run_id == Some(run_id) => {
                    let (event_type, position) = (event.event_type.as_str(), event.position);
                    forward(&sender, event_type, &event.data, position, &mut last).await
                }
                Ok(_) => true,
                // Fell behind the hub: what was missed is in the log.
                Err(RecvError::Lagged(_)) => from_the_log(&store, run_id, &sender, &mut last).await,
                Err(RecvError::Closed) => false,
            };
            if !more {
                return;
            }
        }
    });
    Ok(sse(receiver))
}

/// Sends the run's output after chunk `last` that the log holds, page by page; false once the
/// stream is over (finished, the client left, or the log could not be read).
async fn from_the_log(
    store: &PgPool,
    run_id: Uuid,
    sender: &mpsc::Sender<Event>,
    last: &mut u64,
) -> bool {
    loop {
        let page = match run_reads::run_output_after(store, run_id, *last, HISTORY_PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(%run_id, error = %err, "cannot read a run's output for its live log");
                return false;
            }
        };
        let before = *last;
        for record in &page {
            let (event_type, position) = (record.event_type.as_str(), record.position);
            if !forward(sender, event_type, &record.data, position, last).await {
                return false;
            }
        }
        if (page.len() as i64) < HISTORY_PAGE || *last == before {
            return true;
        }
    }
}

/// Sends one of the run's events; false once the stream is over (finished, or the client left).
async fn forward(
    sender: &mpsc::Sender<Event>,
    event_type: &str,
    data: &Value,
    position: i64,
    last: &mut u64,
) -> bool {
    match event_type {
        "run_output" => {
            let seq = data["seq"].as_u64().unwrap_or(0);
            if seq <= *last {
                return true;
            }
            *last = seq;
            let chunk = json!({"seq": seq, "stream": data["stream"], "text": data["text"]});
            let event = Event::default()
                .id(seq.to_string())
                .event("output")
                .data(chunk.to_string());
            sender.send(event).await.is_ok()
        }
        "run_finished" => {
            let end = json!({"status": data["status"], "exit_code": data["exit_code"],
                             "summary": data["summary"], "reason": data["reason"],
                             "error_code": data["error_code"], "position": position});
            let event = Event::default().event("finished").data(end.to_string());
            let _ = sender.send(event).await;
            false
        }
        _ => true,
    }
}

/// Every run's status changes: `event: run`, data `{run_id, type, status?, position}` for each
/// run event but output. A client that falls behind misses changes (the dashboard reloads the
/// list now and then).
pub async fn run_changes(state: AppState) -> Result<EventStream, ApiError> {
    let mut events = state.live.subscribe();
    let (sender, receiver) = mpsc::channel(CLIENT_BUFFER);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                () = sender.closed() => return,
                () = shutdown.cancelled() => return,
                received = events.recv() => received,
            };
            let event = match received {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a run changes stream fell behind");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let event_type = event.event_type.as_str();
            if event_type == "run_output" {
                continue;
            }
            if let Some(change) = group_change(&event) {
                if sender.try_send(change).is_err() && sender.is_closed() {
                    return;
                }
                continue;
            }
            let status = match event_type {
                "run_queued" => Some("queued"),
                "run_assigned" => Some("assigned"),
                "run_started" => Some("running"),
                "run_finished" => event.data["status"].as_str(),
                _ => None,
            };
            let change = json!({"run_id": event.data["run_id"], "type": event_type,
                                "status": status, "position": event.position,
                                "group_id": event.group_id});
            let event = Event::default()
                .id(event.position.to_string())
                .event("run")
                .data(change.to_string());
            if sender.try_send(event).is_err() && sender.is_closed() {
                return;
            }
        }
    });
    Ok(sse(receiver))
}

/// A group's event as a `group` change: `{group_id, type, status, position}`; `None` for any
/// other event.
fn group_change(event: &crate::live_hub::RunEvent) -> Option<Event> {
    let status = match event.event_type.as_str() {
        "group_started" | "group_cancel_requested" => "running",
        "group_finished" => event.data["status"].as_str().unwrap_or("running"),
        _ => return None,
    };
    let change = json!({"group_id": event.group_id, "type": event.event_type,
                        "status": status, "position": event.position});
    Some(
        Event::default()
            .id(event.position.to_string())
            .event("group")
            .data(change.to_string()),
    )
}
