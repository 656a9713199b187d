//! Where the executor's knowledge and work come from, both on `<PREFIX>_EVENTS`:
//!
//! - [`follow_events`]: an ordered consumer over `<prefix>.events.>` from the first event, folding
//!   every event into the shared [`LabView`] and publishing its position ([`ViewHandle`]);
//! - [`work_consumers`] (in `work`): durable pull consumers shared by every executor process, one
//!   per kind of work (`run_assigned`, `venv_added`), so each item goes to one executor; an item
//!   is handed out only once the view has folded its position.
//!
//! Both act only on events of the log that claimed the stream ([`StreamClaim`], read from the
//! stream's description: executors have no database): an event naming another log in its
//! `Runledger-Log` header, or naming none where every event of the log names it, is skipped and
//! never worked on. When the stream is claimed by another log while an executor follows it (it
//! was reset and a new log took it), the follower stops: the view belongs to the old log.

mod work;

pub use work::{WorkConfig, WorkConsumers, WorkItem, WorkKind, WorkQueue, work_consumers};

use crate::view::LabView;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use runledger_bus::{BusNames, StreamClaim};
use runledger_types::{LogId, RawEventRecord};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long [`follow_events`] waits before re-creating a consumer that failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the events consumer may deliver nothing before [`follow_events`] asks the stream
/// whether it has moved on. The consumer is ephemeral and dies with a restarted NATS server;
/// async-nats reports that only after retrying the consumer's info for about 15 s, and work
/// waits for the view, so every executor would stand idle that long.
const SILENCE_CHECK: Duration = Duration::from_secs(2);

/// Why the feed failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A JetStream call failed.
    #[error("JetStream {what} failed: {source}")]
    JetStream {
        /// The operation.
        what: &'static str,
        /// The server's or client's error.
        source: async_nats::Error,
    },
    /// The task following the events stream has stopped: the view will not move any more.
    #[error("the events follower has stopped")]
    FollowerStopped,
    /// The events stream now belongs to another log than the one the view was folded from.
    #[error(
        "NATS stream {stream} now holds the events of log {now}, not of log {was} this executor \
         followed: restart the executor to follow the new log"
    )]
    LogChanged {
        /// The stream.
        stream: String,
        /// The log the executor followed.
        was: LogId,
        /// The log that claims the stream now.
        now: LogId,
    },
    /// The stream's claim could not be read.
    #[error(transparent)]
    Bus(#[from] runledger_bus::BusError),
}

impl FeedError {
    pub(crate) fn js(what: &'static str) -> impl FnOnce(async_nats::Error) -> FeedError {
        move |source| FeedError::JetStream { what, source }
    }
}

/// The only writer of the shared view: [`follow_events`] holds it.
#[derive(Debug)]
pub struct ViewWriter {
    view: Arc<RwLock<LabView>>,
    position: watch::Sender<i64>,
}

/// A reader of the shared view, cheap to clone.
#[derive(Debug, Clone)]
pub struct ViewHandle {
    view: Arc<RwLock<LabView>>,
    position: watch::Receiver<i64>,
}

/// An empty shared view: the writer for the follower, a handle for everyone else.
pub fn shared_view() -> (ViewWriter, ViewHandle) {
    let view = Arc::new(RwLock::new(LabView::new()));
    let (tx, rx) = watch::channel(0);
    let handle = ViewHandle {
        view: Arc::clone(&view),
        position: rx,
    };
    (ViewWriter { view, position: tx }, handle)
}

impl ViewWriter {
    /// Folds one event record (the JSON body of an events-stream message) into the view.
    /// `stream_sequence` names the message when its body cannot be read. Returns the position
    /// the view is at afterwards.
    ///
    /// Only a record whose position equals its stream sequence is applied: the relay publishes
    /// every event at exactly that sequence, so any other message on the stream was not
    /// published by it (a forged or misrouted event) and is skipped, never acted on.
    pub fn ingest(&self, body: &[u8], stream_sequence: u64) -> i64 {
        let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
        match serde_json::from_slice::<RawEventRecord>(body) {
            Ok(record) if u64::try_from(record.position).ok() != Some(stream_sequence) => {
                tracing::error!(
                    position = record.position,
                    stream_sequence,
                    kind = %record.event_type,
                    "ignoring an event whose position is not its stream sequence: the relay did not publish it"
                );
                view.skip(i64::try_from(stream_sequence).unwrap_or(i64::MAX));
            }
            Ok(record) => match record.decode() {
                Ok(event) => {
                    tracing::trace!(position = record.position, kind = %record.event_type, "apply");
                    view.apply(record.position, &event);
                }
                Err(err) => {
                    tracing::error!(error = %err, "skipping an event the executor cannot read");
                    view.skip(record.position);
                }
            },
            Err(err) => {
                tracing::error!(stream_sequence, error = %err, "skipping a malformed event record");
                view.skip(i64::try_from(stream_sequence).unwrap_or(i64::MAX));
            }
        }
        let position = view.position();
        drop(view);
        self.position.send_replace(position);
        position
    }

    /// Skips the message at `stream_sequence` without acting on it: it is not this log's event
    /// (`why`). Returns the position the view is at afterwards.
    pub fn skip_foreign(&self, stream_sequence: u64, why: &runledger_bus::ForeignEvent) -> i64 {
        tracing::error!(stream_sequence, reason = %why, "ignoring an event of another log");
        let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
        view.skip(i64::try_from(stream_sequence).unwrap_or(i64::MAX));
        let position = view.position();
        drop(view);
        self.position.send_replace(position);
        position
    }

    /// The position of the last event folded.
    pub fn position(&self) -> i64 {
        *self.position.borrow()
    }

    /// A reader of the same view.
    pub fn handle(&self) -> ViewHandle {
        ViewHandle {
            view: Arc::clone(&self.view),
            position: self.position.subscribe(),
        }
    }
}

impl ViewHandle {
    /// Runs `read` on the view. Keep it short: the follower waits meanwhile.
    pub fn read<R>(&self, read: impl FnOnce(&LabView) -> R) -> R {
        read(&self.view.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The position of the last event folded.
    pub fn position(&self) -> i64 {
        *self.position.borrow()
    }

    /// Waits until the view has folded `position`.
    pub async fn wait_for(&self, position: i64) -> Result<(), FeedError> {
        let mut position_rx = self.position.clone();
        position_rx
            .wait_for(|at| *at >= position)
            .await
            .map(|_| ())
            .map_err(|_| FeedError::FollowerStopped)
    }
}

/// Follows `<PREFIX>_EVENTS` from the first event (or from where `writer` already is) until
/// `shutdown`, folding every event of `claim`'s log into the view in order. A failed consumer is
/// re-created from the next position; a missing stream ends this with an error, and so does
/// the stream being claimed by another log meanwhile.
pub async fn follow_events(
    js: &jetstream::Context,
    names: &BusNames,
    claim: StreamClaim,
    writer: ViewWriter,
    shutdown: CancellationToken,
) -> Result<(), FeedError> {
    let mut first = true;
    let mut stream = js
        .get_stream(names.events_stream())
        .await
        .map_err(|err| FeedError::js("get events stream")(err.into()))?;
    loop {
        if !first {
            still_claimed(js, names, claim).await?;
        }
        first = false;
        let from = writer.position() + 1;
        let opened = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            opened = ordered_from(js, names, from) => opened,
        };
        match opened {
            Ok(mut messages) => {
                tracing::info!(from, "following the events stream");
                loop {
                    let next = tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        next = tokio::time::timeout(SILENCE_CHECK, messages.next()) => next,
                    };
                    match next {
                        Ok(Some(Ok(message))) => {
                            let sequence = message.info().map_or(0, |info| info.stream_sequence);
                            match claim.admits_message(message.headers.as_ref(), sequence) {
                                Ok(()) => {
                                    writer.ingest(&message.payload, sequence);
                                }
                                Err(why) => {
                                    writer.skip_foreign(sequence, &why);
                                    // Another log's event: has another log taken the stream?
                                    still_claimed(js, names, claim).await?;
                                }
                            }
                        }
                        Ok(Some(Err(err))) => {
                            tracing::warn!(error = %err, "events consumer failed; re-creating it");
                            break;
                        }
                        Ok(None) => break,
                        Err(_silent) => {
                            if stream_moved_on(&mut stream, writer.position()).await {
                                tracing::warn!(
                                    "events consumer silent while the stream moved on; re-creating it"
                                );
                                break;
                            }
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot follow the events stream yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(RETRY_AFTER) => {}
        }
    }
}

/// Fails when the events stream is now claimed by another log than `claim`'s.
async fn still_claimed(
    js: &jetstream::Context,
    names: &BusNames,
    claim: StreamClaim,
) -> Result<(), FeedError> {
    let stream = names.events_stream();
    match runledger_bus::claim::observe(js, &stream).await {
        Ok(Some(state)) => match state.claim {
            Some(now) if now.log != claim.log => Err(FeedError::LogChanged {
                stream,
                was: claim.log,
                now: now.log,
            }),
            _ => Ok(()),
        },
        Ok(None) => Ok(()),
        Err(err) => {
            tracing::warn!(error = %err, "cannot look at the events stream's claim");
            Ok(())
        }
    }
}

/// True when the stream holds events after `position`: a consumer that delivers none of them
/// is lost. False when the stream cannot be asked (the connection is down: wait for it).
async fn stream_moved_on(stream: &mut jetstream::stream::Stream, position: i64) -> bool {
    match stream.info().await {
        Ok(info) => i64::try_from(info.state.last_sequence).is_ok_and(|last| last > position),
        Err(_) => false,
    }
}

async fn ordered_from(
    js: &jetstream::Context,
    names: &BusNames,
    from: i64,
) -> Result<consumer::pull::Ordered, FeedError> {
    let stream = js
        .get_stream(names.events_stream())
        .await
        .map_err(|err| FeedError::js("get events stream")(err.into()))?;
    let deliver_policy = match u64::try_from(from) {
        Ok(start_sequence) if start_sequence > 1 => {
            consumer::DeliverPolicy::ByStartSequence { start_sequence }
        }
        _ => consumer::DeliverPolicy::All,
    };
    let config = consumer::pull::OrderedConfig {
        filter_subject: names.events_filter(),
        deliver_policy,
        ..Default::default()
    };
    stream
        .create_consumer(config)
        .await
        .map_err(|err| FeedError::js("create events consumer")(err.into()))?
        .messages()
        .await
        .map_err(|err| FeedError::js("follow events")(err.into()))
}
