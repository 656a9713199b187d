//! Claiming the prefix's streams for this log before anything is taken from or published to
//! them: a stream that holds another log's events is refused, with the reason and the ways out.

use async_nats::jetstream;
use runledger_bus::claim::{self, apply, decide, observe};
use runledger_bus::{BusError, BusNames, LogFacts, Refusal, StreamClaim, StreamKind};
use runledger_store::{EventStore, StoreError};

/// Why the streams could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// A stream holds another log's events (or more than this log holds).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Claims `<PREFIX>_COMMANDS` and `<PREFIX>_EVENTS` for the log of `store` (creating them when
/// missing), or refuses them; returns the events stream's claim.
pub async fn claim_streams(
    store: &EventStore,
    js: &jetstream::Context,
    names: &BusNames,
) -> Result<StreamClaim, ClaimError> {
    let id = store.log_id().await?;
    let events = claim_one(store, js, names, StreamKind::Events, id).await?;
    claim_one(store, js, names, StreamKind::Commands, id).await?;
    Ok(events)
}

/// How many times a claim is tried when the stream changes under it (an executor creating it
/// unclaimed at the same moment, say).
const ATTEMPTS: usize = 3;

async fn claim_one(
    store: &EventStore,
    js: &jetstream::Context,
    names: &BusNames,
    kind: StreamKind,
    id: runledger_types::LogId,
) -> Result<StreamClaim, ClaimError> {
    let name = kind.stream_name(names);
    for _ in 0..ATTEMPTS {
        let state = observe(js, &name).await?;
        // The head is read after the stream: events reach the stream only once committed, so a
        // relay publishing meanwhile can move the head past what was observed, never the
        // stream past the head (read the other way round, it looks like a lost event).
        let log = &LogFacts {
            id,
            head: store.head().await?,
        };
        let compared = match state.as_ref().and_then(|s| s.sequence_to_compare(log)) {
            Some(sequence) => Some(same_event(store, js, &name, sequence).await?),
            None => None,
        };
        let decision = decide(kind, &name, state.as_ref(), log, compared);
        let claim = apply(js, names, kind, decision).await??;
        // Another process may have created the stream at the same moment: look again.
        match observe(js, &name).await?.and_then(|state| state.claim) {
            Some(now) if now.log == log.id => {
                tracing::debug!(stream = %name, log = %log.id, "stream claimed");
                return Ok(claim);
            }
            Some(now) => {
                return Err(Refusal::OtherLog {
                    stream: name,
                    ours: log.id,
                    theirs: now.log,
                }
                .into());
            }
            None => {
                tracing::debug!(stream = %name, "the stream changed while it was claimed; again")
            }
        }
    }
    Err(BusError::Claim { stream: name }.into())
}

/// Whether the stream's message at `sequence` is the log's event at that position.
async fn same_event(
    store: &EventStore,
    js: &jetstream::Context,
    name: &str,
    sequence: u64,
) -> Result<bool, ClaimError> {
    let position = i64::try_from(sequence).unwrap_or(i64::MAX);
    let in_stream = claim::event_id_at(js, name, sequence).await?;
    let in_log = store.event_id_at(position).await?;
    Ok(in_stream.is_some() && in_stream == in_log)
}
