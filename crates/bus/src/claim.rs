//! Claiming a prefix's streams for one log, or refusing them because they hold another's.
//!
//! The handler claims the streams before it takes a command and whenever its relay starts to
//! lead: [`observe`] looks at a stream, [`decide`] (pure) judges it against the log, and
//! [`apply`] creates the stream or writes the claim into its description. Executors, which have
//! no database, read the claim back ([`observe`]) and follow only events that carry it.

use crate::identity::StreamClaim;
use crate::names::BusNames;
use crate::setup::{BusError, commands_config, events_config};
use async_nats::jetstream::{self, stream};
use runledger_types::{EventId, LogId};

/// Which of the prefix's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `<PREFIX>_COMMANDS`.
    Commands,
    /// `<PREFIX>_EVENTS`: its sequence is the log position, so it is checked against the log.
    Events,
}

impl StreamKind {
    /// The stream's name under `names`.
    pub fn stream_name(self, names: &BusNames) -> String {
        match self {
            Self::Commands => names.commands_stream(),
            Self::Events => names.events_stream(),
        }
    }
}

/// A stream as it is on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    /// Its name.
    pub name: String,
    /// The claim its description records, if any.
    pub claim: Option<StreamClaim>,
    /// Its last sequence (0 when it never held a message).
    pub last_sequence: u64,
    /// How many messages it holds.
    pub messages: u64,
}

/// The facts about a log that decide whether a stream is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFacts {
    /// The log's identity.
    pub id: LogId,
    /// The log's head position.
    pub head: i64,
}

/// What to do with a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It is missing: create it with this claim.
    Create(StreamClaim),
    /// It is the log's already.
    Keep(StreamClaim),
    /// It has no claim and holds nothing that contradicts the log: write this claim.
    Adopt(StreamClaim),
    /// It is not the log's.
    Refuse(Refusal),
}

/// Why a stream is refused, in words that say what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The stream is claimed by another log.
    #[error(
        "NATS stream {stream} belongs to log {theirs}, not to this database's log {ours} (a \
         database dropped and created again, or two labs sharing one NATS?): runledger will not \
         act on another log's events. {WAYS_OUT}"
    )]
    OtherLog {
        /// The stream.
        stream: String,
        /// This database's log.
        ours: LogId,
        /// The log the stream belongs to.
        theirs: LogId,
    },
    /// The stream has no claim and holds more than the log: another log's events.
    #[error(
        "NATS stream {stream} holds {last_sequence} events of a log without identity (an older \
         runledger), more than this database's log {ours} holds ({head}): they belong to another \
         log. {WAYS_OUT}"
    )]
    Unclaimed {
        /// The stream.
        stream: String,
        /// This database's log.
        ours: LogId,
        /// The stream's last sequence.
        last_sequence: u64,
        /// The log's head.
        head: i64,
    },
    /// The stream has no claim and its last event is not the log's event at that position.
    #[error(
        "NATS stream {stream} holds at sequence {sequence} an event that is not the event of \
         this database's log {ours} at that position: it belongs to a log without identity (an \
         older runledger). {WAYS_OUT}"
    )]
    Diverged {
        /// The stream.
        stream: String,
        /// This database's log.
        ours: LogId,
        /// The sequence compared.
        sequence: u64,
    },
    /// The stream is the log's but holds more than the log: the log lost committed events.
    #[error(
        "NATS stream {stream} of log {ours} is at sequence {last_sequence}, ahead of the log's \
         head {head}: the database lost events it had published (restored from an older \
         backup?). {WAYS_OUT}"
    )]
    AheadOfLog {
        /// The stream.
        stream: String,
        /// This database's log (and the stream's).
        ours: LogId,
        /// The stream's last sequence.
        last_sequence: u64,
        /// The log's head.
        head: i64,
    },
}

/// The two ways out, said after every refusal.
const WAYS_OUT: &str = "Either give this log streams of its own with another \
    RUNLEDGER_NATS_PREFIX (for example RUNLEDGER_NATS_PREFIX=lab2), or delete this prefix's \
    streams with `runledger bus reset` (NATS forgets their events; the database that wrote them \
    keeps its log)";

impl Refusal {
    /// The stream refused.
    pub fn stream(&self) -> &str {
        match self {
            Self::OtherLog { stream, .. }
            | Self::Unclaimed { stream, .. }
            | Self::Diverged { stream, .. }
            | Self::AheadOfLog { stream, .. } => stream,
        }
    }
}

impl StreamState {
    /// The sequence whose event must be compared with the log's before an unclaimed events
    /// stream is adopted: its last, when it holds anything the log could hold.
    pub fn sequence_to_compare(&self, log: &LogFacts) -> Option<u64> {
        let within = i64::try_from(self.last_sequence).is_ok_and(|last| last <= log.head);
        (self.claim.is_none() && self.messages > 0 && within).then_some(self.last_sequence)
    }
}

/// What to do with stream `name` of `kind`, found as `state` (`None`: missing), for `log`.
/// `compared` says whether the stream's event at [`StreamState::sequence_to_compare`] is the
/// log's event at that position (its `Nats-Msg-Id` is the event id).
pub fn decide(
    kind: StreamKind,
    name: &str,
    state: Option<&StreamState>,
    log: &LogFacts,
    compared: Option<bool>,
) -> Decision {
    let Some(state) = state else {
        return Decision::Create(StreamClaim::new(log.id));
    };
    let stream = name.to_owned();
    let ahead = i64::try_from(state.last_sequence).map_or(true, |last| last > log.head);
    let ours = log.id;
    match (state.claim, kind) {
        (Some(claim), _) if claim.log != ours => Decision::Refuse(Refusal::OtherLog {
            stream,
            ours,
            theirs: claim.log,
        }),
        (Some(_), StreamKind::Events) if ahead => Decision::Refuse(Refusal::AheadOfLog {
            stream,
            ours,
            last_sequence: state.last_sequence,
            head: log.head,
        }),
        (Some(claim), _) => Decision::Keep(claim),
        (None, StreamKind::Commands) => Decision::Adopt(StreamClaim::new(ours)),
        (None, StreamKind::Events) if ahead => Decision::Refuse(Refusal::Unclaimed {
            stream,
            ours,
            last_sequence: state.last_sequence,
            head: log.head,
        }),
        (None, StreamKind::Events) if state.messages > 0 && compared != Some(true) => {
            Decision::Refuse(Refusal::Diverged {
                stream,
                ours,
                sequence: state.last_sequence,
            })
        }
        (None, StreamKind::Events) => Decision::Adopt(StreamClaim {
            log: ours,
            headers_from: state.last_sequence + 1,
        }),
    }
}

/// The stream named `name` as it is now; `None` when it does not exist.
pub async fn observe(js: &jetstream::Context, name: &str) -> Result<Option<StreamState>, BusError> {
    let mut stream = match js.get_stream(name).await {
        Ok(stream) => stream,
        Err(err) if is_not_found(&err) => return Ok(None),
        Err(err) => return Err(BusError::js("look up stream")(err.into())),
    };
    let info = stream
        .info()
        .await
        .map_err(|err| BusError::js("read stream info")(err.into()))?;
    Ok(Some(StreamState {
        name: name.to_owned(),
        claim: info
            .config
            .description
            .as_deref()
            .and_then(StreamClaim::parse),
        last_sequence: info.state.last_sequence,
        messages: info.state.messages,
    }))
}

fn is_not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(js)
        if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// The event id (`Nats-Msg-Id`) of the message at `sequence` of stream `name`, if it has one.
pub async fn event_id_at(
    js: &jetstream::Context,
    name: &str,
    sequence: u64,
) -> Result<Option<EventId>, BusError> {
    let stream = js
        .get_stream(name)
        .await
        .map_err(|err| BusError::js("look up stream")(err.into()))?;
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(|err| BusError::js("read a stream message")(err.into()))?;
    Ok(message
        .headers
        .get(crate::MSG_ID_HEADER)
        .and_then(|id| id.as_str().parse().ok())
        .map(EventId))
}

/// Carries out `decision` for stream `kind`; returns the claim the stream carries afterwards.
pub async fn apply(
    js: &jetstream::Context,
    names: &BusNames,
    kind: StreamKind,
    decision: Decision,
) -> Result<Result<StreamClaim, Refusal>, BusError> {
    let config = |claim: StreamClaim| {
        let description = Some(claim.describe());
        match kind {
            StreamKind::Commands => stream::Config {
                description,
                ..commands_config(names)
            },
            StreamKind::Events => stream::Config {
                description,
                ..events_config(names)
            },
        }
    };
    match decision {
        Decision::Keep(claim) => Ok(Ok(claim)),
        Decision::Refuse(refusal) => Ok(Err(refusal)),
        Decision::Create(claim) => {
            js.get_or_create_stream(config(claim))
                .await
                .map_err(|err| BusError::js("create stream")(err.into()))?;
            Ok(Ok(claim))
        }
        Decision::Adopt(claim) => {
            let mut stream = js
                .get_stream(kind.stream_name(names))
                .await
                .map_err(|err| BusError::js("look up stream")(err.into()))?;
            let mut current = stream
                .info()
                .await
                .map_err(|err| BusError::js("read stream info")(err.into()))?
                .config
                .clone();
            current.description = Some(claim.describe());
            js.update_stream(current)
                .await
                .map_err(|err| BusError::js("claim stream")(err.into()))?;
            Ok(Ok(claim))
        }
    }
}

#[cfg(test)]
mod tests;
