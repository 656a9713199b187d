//! The outbox relay: publishes committed events to `RUNLEDGER_EVENTS` exactly in log order.
//!
//! One relay leads (the store's [`LeaderLock`] named for the events stream); the others wait to
//! take over. The events stream itself is the relay's checkpoint: every event is published with
//! `Nats-Expected-Last-Sequence: position - 1`, so the stream sequence equals the log position, a
//! restarted relay resumes after the stream's last sequence, and a second relay that slipped in
//! can neither duplicate nor skip an event (the server refuses the publish).
//!
//! Before it publishes, a leading relay claims the streams for its log ([`crate::claim`]) and
//! every event carries the log's identity (header `Runledger-Log`). A stream that holds another
//! log's events is refused, and the refusal stops the handler: it cannot go on.

use crate::claim::{ClaimError, claim_streams};
use crate::feed::Feed;
use async_nats::jetstream::{self, message::PublishMessage};
use runledger_bus::{BusNames, LOG_HEADER, Refusal};
use runledger_store::{EventStore, LeaderLock, Leadership, StoreError};
use runledger_types::{LogId, RawEventRecord};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Events read and published per round.
const PAGE: i64 = 1000;
/// How often an idle relay looks at the log even without a wake-up (other handler processes).
const POLL: Duration = Duration::from_millis(100);

/// Why a relay lost its leadership or stopped publishing for a moment.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// NATS refused or failed.
    #[error("events stream: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The streams are not this log's: the relay cannot go on.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The streams could not be claimed for a moment.
    #[error("cannot claim the streams: {0}")]
    Claim(#[source] ClaimError),
    /// The events stream holds more than the log (its claim is checked again at the next lead).
    #[error("events stream is at sequence {stream}, ahead of the log head {head}")]
    StreamAhead {
        /// Stream's last sequence.
        stream: i64,
        /// Log head.
        head: i64,
    },
}

fn nats_error(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> RelayError {
    RelayError::Nats(err.into())
}

impl From<ClaimError> for RelayError {
    fn from(err: ClaimError) -> Self {
        match err {
            ClaimError::Refused(refusal) => Self::Refused(refusal),
            other => Self::Claim(other),
        }
    }
}

/// Runs until `shutdown`: waits for leadership, then publishes; `feed` brings this process's
/// commits. Returns early, with the refusal, when the streams hold another log's events.
pub(crate) async fn run_relay(
    store: EventStore,
    js: jetstream::Context,
    names: BusNames,
    mut feed: Feed,
    shutdown: CancellationToken,
) -> Result<(), Refusal> {
    let relay = Relay {
        store,
        js,
        names,
        shutdown,
    };
    while !relay.shutdown.is_cancelled() {
        match relay.lead(&mut feed).await {
            Ok(()) => {}
            Err(RelayError::Refused(refusal)) => return Err(refusal),
            Err(err) => tracing::warn!(error = %err, "outbox relay interrupted; retrying"),
        }
        feed.clear();
        tokio::select! {
            () = relay.shutdown.cancelled() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    Ok(())
}

struct Relay {
    store: EventStore,
    js: jetstream::Context,
    names: BusNames,
    shutdown: CancellationToken,
}

impl Relay {
    /// Becomes leader (or returns when another process leads), then publishes until an error.
    #[tracing::instrument(level = "debug", skip_all, fields(component = "relay",
        stream = %self.names.events_stream()))]
    async fn lead(&self, feed: &mut Feed) -> Result<(), RelayError> {
        let lock = LeaderLock::named(self.names.events_stream());
        let Some(mut leader) = lock.try_lead(self.store.pool()).await? else {
            return Ok(());
        };
        tracing::info!(stream = %self.names.events_stream(), "outbox relay leads");
        // A stream deleted by hand is created again and refilled from the log; a stream of
        // another log is refused.
        let log = claim_streams(&self.store, &self.js, &self.names).await?.log;
        let result = self.publish_loop(&mut leader, feed, log).await;
        leader.release().await;
        result
    }

    async fn publish_loop(
        &self,
        leader: &mut Leadership,
        feed: &mut Feed,
        log: LogId,
    ) -> Result<(), RelayError> {
        let mut published = self.stream_last_sequence().await?;
        let mut checked = Instant::now();
        // The log is looked at when the feed skips a position (another process's event) and at
        // least every POLL; not after each batch of our own, which the feed hands on in full.
        let mut looked = Instant::now()
            .checked_sub(POLL)
            .unwrap_or_else(Instant::now);
        while !self.shutdown.is_cancelled() {
            let fed = feed.take_after(published, PAGE as usize);
            if !fed.is_empty() {
                published = self.publish_records(published, fed, log).await?;
                continue;
            }
            if feed.is_behind_a_gap() || looked.elapsed() >= POLL {
                looked = Instant::now();
                let head = self.store.head().await?;
                if head < published {
                    return Err(RelayError::StreamAhead {
                        stream: published,
                        head,
                    });
                }
                if head > published {
                    let records = self.store.read_after_raw(published, PAGE).await?;
                    published = self.publish_records(published, records, log).await?;
                    continue;
                }
            }
            if checked.elapsed() > Duration::from_secs(5) {
                leader.check().await?;
                checked = Instant::now();
            }
            tokio::select! {
                () = self.shutdown.cancelled() => {}
                () = feed.wait() => {}
                () = tokio::time::sleep(POLL.saturating_sub(looked.elapsed())) => {}
            }
        }
        Ok(())
    }

    async fn stream_last_sequence(&self) -> Result<i64, RelayError> {
        let mut stream = self
            .js
            .get_stream(self.names.events_stream())
            .await
            .map_err(nats_error)?;
        let info = stream.info().await.map_err(nats_error)?;
        i64::try_from(info.state.last_sequence).map_err(nats_error)
    }

    /// Publishes `records` (which follow `published`); returns the new last published position.
    #[tracing::instrument(level = "debug", skip_all, fields(after = published, count = records.len(),
        first_event_id = records.first().map(|r| tracing::field::display(r.event_id))))]
    async fn publish_records(
        &self,
        published: i64,
        records: Vec<RawEventRecord>,
        log: LogId,
    ) -> Result<i64, RelayError> {
        let mut acks = Vec::with_capacity(records.len());
        let log = log.to_string();
        for record in &records {
            acks.push(self.publish(record, &log).await?);
        }
        let mut last = published;
        for (ack, record) in acks.into_iter().zip(&records) {
            match ack.await {
                Ok(_) => last = record.position,
                Err(err) => {
                    tracing::warn!(position = record.position, error = %err, "publish refused; resynchronising with the stream");
                    return self.stream_last_sequence().await;
                }
            }
        }
        Ok(last)
    }

    async fn publish(
        &self,
        record: &RawEventRecord,
        log: &str,
    ) -> Result<jetstream::context::PublishAckFuture, RelayError> {
        let body = serde_json::to_vec(record).map_err(nats_error)?;
        let subject = self
            .names
            .event_subject(record.stream_id.stream_type(), &record.event_type);
        let expected = u64::try_from(record.position - 1).map_err(nats_error)?;
        let message = PublishMessage::build()
            .payload(body.into())
            .message_id(record.event_id.to_string())
            .header(LOG_HEADER, log)
            .expected_last_sequence(expected);
        self.js
            .send_publish(subject, message)
            .await
            .map_err(nats_error)
    }
}
