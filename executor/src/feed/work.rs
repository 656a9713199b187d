//! Work for executors: durable pull consumers on the events stream, shared by every executor
//! process, each message going to one of them. Items are pulled one at a time, on demand, so an
//! executor never holds (and lets time out) more work than it asked for.

use super::{FeedError, ViewHandle};
use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use runledger_bus::{BusNames, StreamClaim};
use runledger_types::{Event, EventRecord, RawEventRecord};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Settings of the work consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkConfig {
    /// An item neither acked nor marked in progress for this long is delivered again.
    pub ack_wait: Duration,
    /// Most items delivered and not yet acked, over all executors.
    pub max_ack_pending: i64,
    /// How long one pull request waits for an item before it is renewed.
    pub pull_expires: Duration,
}

impl Default for WorkConfig {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            pull_expires: Duration::from_secs(5),
        }
    }
}

/// A kind of work, with its event type and durable consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkKind {
    /// `run_assigned`: execute the run.
    Run,
    /// `venv_added`: provision the venv.
    Venv,
    /// `run_finished`: clean up after a run that ended in error (stop its Jenkins build).
    Ended,
}

impl WorkKind {
    /// The subject this kind's consumer filters on (one filter subject: NATS 2.9).
    pub fn filter_subject(self, names: &BusNames) -> String {
        match self {
            Self::Run => names.event_subject("run", "run_assigned"),
            Self::Venv => names.event_subject("venv", "venv_added"),
            Self::Ended => names.event_subject("run", "run_finished"),
        }
    }

    /// `<PREFIX>_EXECUTOR_RUNS` / `_VENVS` / `_ENDS`, shared by every executor.
    pub fn durable_name(self, names: &BusNames) -> String {
        let events = names.events_stream();
        let prefix = events.strip_suffix("_EVENTS").unwrap_or(&events);
        match self {
            Self::Run => format!("{prefix}_EXECUTOR_RUNS"),
            Self::Venv => format!("{prefix}_EXECUTOR_VENVS"),
            Self::Ended => format!("{prefix}_EXECUTOR_ENDS"),
        }
    }
}

/// The executor's work queues.
#[derive(Debug)]
pub struct WorkConsumers {
    /// `run_assigned` items.
    pub runs: WorkQueue,
    /// `venv_added` items.
    pub venvs: WorkQueue,
    /// `run_finished` items.
    pub ends: WorkQueue,
}

/// Creates (when missing) and opens the durable work consumers on `<PREFIX>_EVENTS`, handing
/// out only events of `claim`'s log.
pub async fn work_consumers(
    js: &jetstream::Context,
    names: &BusNames,
    claim: StreamClaim,
    config: WorkConfig,
) -> Result<WorkConsumers, FeedError> {
    let stream = js
        .get_stream(names.events_stream())
        .await
        .map_err(|err| FeedError::js("get events stream")(err.into()))?;
    Ok(WorkConsumers {
        runs: WorkQueue::open(&stream, names, WorkKind::Run, claim, config).await?,
        venvs: WorkQueue::open(&stream, names, WorkKind::Venv, claim, config).await?,
        ends: WorkQueue::open(&stream, names, WorkKind::Ended, claim, config).await?,
    })
}

/// One durable work consumer.
#[derive(Debug)]
pub struct WorkQueue {
    kind: WorkKind,
    claim: StreamClaim,
    consumer: consumer::PullConsumer,
    pull_expires: Duration,
}

impl WorkQueue {
    /// Creates (when missing) and opens the durable consumer of `kind`: explicit acks, every
    /// matching event from the first, redelivered without limit; only `claim`'s log's events
    /// are handed out.
    pub async fn open(
        stream: &jetstream::stream::Stream,
        names: &BusNames,
        kind: WorkKind,
        claim: StreamClaim,
        config: WorkConfig,
    ) -> Result<Self, FeedError> {
        let durable = kind.durable_name(names);
        let consumer = stream
            .get_or_create_consumer(
                &durable,
                consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    max_deliver: -1,
                    max_ack_pending: config.max_ack_pending,
                    deliver_policy: consumer::DeliverPolicy::All,
                    filter_subject: kind.filter_subject(names),
                    ..Default::default()
                },
            )
            .await
            .map_err(|err| FeedError::js("create work consumer")(err.into()))?;
        Ok(Self {
            kind,
            claim,
            consumer,
            pull_expires: config.pull_expires,
        })
    }

    /// The kind of work this queue holds.
    pub fn kind(&self) -> WorkKind {
        self.kind
    }

    /// The next item, waiting as long as needed; `None` once `shutdown` fires. Items whose body
    /// cannot be read are terminated (never delivered again) and logged.
    pub async fn next(&self, shutdown: &CancellationToken) -> Result<Option<WorkItem>, FeedError> {
        loop {
            let pulled = tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                pulled = self.pull_one() => pulled?,
            };
            let Some(message) = pulled else { continue };
            match WorkItem::read(message, &self.claim) {
                Ok(item) => return Ok(Some(item)),
                Err(unreadable) => {
                    let (message, err) = *unreadable;
                    tracing::error!(kind = ?self.kind, error = %err, "dropping work that is not to be done");
                    if let Err(err) = message.ack_with(AckKind::Term).await {
                        tracing::warn!(error = %err, "cannot terminate unreadable work");
                    }
                }
            }
        }
    }

    /// The next item once `view` has folded its position (so the view knows everything the
    /// item refers to); `None` once `shutdown` fires.
    pub async fn next_ready(
        &self,
        view: &ViewHandle,
        shutdown: &CancellationToken,
    ) -> Result<Option<WorkItem>, FeedError> {
        let Some(item) = self.next(shutdown).await? else {
            return Ok(None);
        };
        tokio::select! {
            () = shutdown.cancelled() => Ok(None),
            waited = view.wait_for(item.position) => waited.map(|()| Some(item)),
        }
    }

    async fn pull_one(&self) -> Result<Option<jetstream::Message>, FeedError> {
        let mut batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(self.pull_expires)
            .messages()
            .await
            .map_err(|err| FeedError::js("pull work")(err.into()))?;
        match batch.next().await {
            Some(Ok(message)) => Ok(Some(message)),
            Some(Err(err)) => Err(FeedError::js("pull work")(err)),
            None => Ok(None),
        }
    }
}

/// One piece of work: the event, where it is in the log, and the message to settle.
#[derive(Debug)]
pub struct WorkItem {
    /// The event's log position (its stream sequence).
    pub position: i64,
    /// The event.
    pub event: Event,
    /// The record's other fields (event id for `causation_id`, correlation id, actor).
    pub meta: EventRecord<()>,
    /// How many times the item has been delivered, 1 the first time.
    pub deliveries: i64,
    message: jetstream::Message,
}

type ReadError = (jetstream::Message, String);

impl WorkItem {
    /// The item in `message`, unless it is not an event of `claim`'s log, its body cannot be
    /// read or its position is not the message's stream sequence (the relay publishes every
    /// event at exactly that sequence: any other message on the stream is forged or misrouted,
    /// and is never worked on).
    fn read(message: jetstream::Message, claim: &StreamClaim) -> Result<Self, Box<ReadError>> {
        let (deliveries, sequence) = message.info().map_or((1, None), |info| {
            (info.delivered, Some(info.stream_sequence))
        });
        let admitted = claim.admits_message(message.headers.as_ref(), sequence.unwrap_or(u64::MAX));
        if let Err(foreign) = admitted {
            let reason = format!("not an event of log {}: {foreign}", claim.log);
            return Err(Box::new((message, reason)));
        }
        let record = match serde_json::from_slice::<RawEventRecord>(&message.payload) {
            Ok(record) => record,
            Err(err) => return Err(Box::new((message, err.to_string()))),
        };
        if sequence != u64::try_from(record.position).ok() {
            let reason = format!(
                "the event claims position {} but is stream sequence {sequence:?}: the relay did \
                 not publish it",
                record.position
            );
            return Err(Box::new((message, reason)));
        }
        match record.decode() {
            Ok(event) => Ok(Self {
                position: record.position,
                event,
                meta: record.with_data(()),
                deliveries,
                message,
            }),
            Err(err) => Err(Box::new((message, err.to_string()))),
        }
    }

    /// Done: never deliver it again. Waits for the server to confirm.
    pub async fn ack(&self) -> Result<(), FeedError> {
        self.message
            .double_ack()
            .await
            .map_err(FeedError::js("ack work"))
    }

    /// Still working on it: restarts the item's `ack_wait`.
    pub async fn in_progress(&self) -> Result<(), FeedError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(FeedError::js("mark work in progress"))
    }

    /// Not handled: deliver it again (to any executor), after `delay` if given.
    pub async fn nak(&self, delay: Option<Duration>) -> Result<(), FeedError> {
        self.message
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(FeedError::js("nak work"))
    }

    /// Marks the item in progress every `every` until the future is dropped or a mark fails.
    pub async fn keep_alive(&self, every: Duration) -> FeedError {
        loop {
            tokio::time::sleep(every).await;
            if let Err(err) = self.in_progress().await {
                return err;
            }
        }
    }
}
