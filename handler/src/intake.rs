//! The intake loop: pull a group of commands, decide them together, append them in one
//! transaction, answer and ack. A message is acked only after its transaction commits, so a
//! crash at any point means redelivery, and redelivery is harmless (the command id is recorded).

use crate::claim::{ClaimError, claim_streams};
use crate::feed::Feed;
use crate::gather::gather_rest;
use crate::group::Intake;
use crate::lab_sync::catch_up;
use crate::lease_watch::{held, tick_every, watch_leases};
use crate::pipeline::{AppendResult, InFlight, completion};
use crate::quarantine_watch::{quarantine_ends, watch_quarantines};
use crate::relay::run_relay;
use crate::seal::{INTERVAL as SEAL_INTERVAL, run_sealer};
use crate::stats::HandlerStats;
use futures::StreamExt;
use runledger_bus::{
    BusError, BusNames, CommandSender, Liveness, LivenessError, Refusal, handler_consumer,
    jetstream,
};
use runledger_domain::Lab;
use runledger_secrets::Keyring;
use runledger_store::{EventStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// How long a group waits for commands the server says are already pending.
const LINGER: Duration = Duration::from_millis(5);

/// How long the quarantine watch waits for a lapse's outcome, and how often it publishes one.
const LAPSE_TIMEOUT: Duration = Duration::from_secs(10);
const LAPSE_ATTEMPTS: u32 = 3;

/// Tuning for the handler.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    /// Most commands decided and appended in one transaction.
    pub max_batch: usize,
    /// How long a delivered command may stay unacked before JetStream redelivers it (to another
    /// handler, after a crash).
    pub ack_wait: Duration,
    /// How long an executor may go without a liveness beat before the runs it holds end as
    /// `error` (`executor_lost`) or are retried ([`crate::lease_watch`]).
    pub executor_lease: Duration,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        Self {
            max_batch: 1000,
            ack_wait: Duration::from_secs(30),
            executor_lease: Duration::from_secs(30),
        }
    }
}

/// What the handler needs: the log, NATS, the names, and the key that seals credentials.
#[derive(Debug, Clone)]
pub struct Handler {
    /// The event log.
    pub store: EventStore,
    /// A NATS connection.
    pub nats: async_nats::Client,
    /// Subject and stream names.
    pub names: BusNames,
    /// Seals machine credentials.
    pub keyring: Keyring,
    /// Tuning.
    pub settings: HandlerSettings,
    /// Counters, shared with whoever wants to read them.
    pub stats: Arc<HandlerStats>,
}

impl Handler {
    /// The largest event (as JSON) the NATS server this handler is connected to carries in one
    /// message; a decision with a larger one is refused (`event_too_large`).
    pub(crate) fn max_event_bytes(&self) -> usize {
        crate::decide::max_event_bytes(self.nats.server_info().max_payload)
    }
}

/// Why the handler stopped.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// NATS set-up failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The executors' liveness bucket could not be opened.
    #[error(transparent)]
    Liveness(#[from] LivenessError),
    /// The log could not be read at start-up.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The consumer's message stream could not be opened.
    #[error("cannot read the commands stream: {0}")]
    Consumer(#[source] async_nats::Error),
    /// The consumer's message stream ended: the server closed it.
    #[error("the commands consumer's message stream ended")]
    ConsumerEnded,
    /// The streams are not this log's, or could not be claimed for it.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The relay found the streams taken by another log while it ran.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// What woke the intake loop.
enum Wake<E> {
    Stop,
    LeaseTick,
    Committed(AppendResult),
    RelayStopped(Result<Result<(), Refusal>, tokio::task::JoinError>),
    Message(Option<Result<Box<async_nats::jetstream::Message>, E>>),
}

/// Runs the handler (intake, outbox relay and sealer) until `shutdown` is cancelled. The group
/// being processed when shutdown comes is finished first; unacked messages are redelivered later.
#[tracing::instrument(skip_all, fields(component = "handler", stream = %handler.names.commands_stream()))]
pub async fn run(handler: Handler, shutdown: CancellationToken) -> Result<(), HandlerError> {
    let js = jetstream(handler.nats.clone());
    let claim = claim_streams(&handler.store, &js, &handler.names).await?;
    tracing::info!(log = %claim.log, "streams claimed for this log");
    let commands = js
        .get_stream(handler.names.commands_stream())
        .await
        .map_err(|err| HandlerError::Consumer(err.into()))?;
    let consumer = handler_consumer(&commands, &handler.names, handler.settings.ack_wait).await?;
    let liveness = Liveness::open(&js, &handler.names).await?;
    let mut lab = Lab::new();
    let folded = catch_up(&handler.store, &mut lab).await?;
    tracing::info!(
        folded,
        position = lab.position(),
        "lab state loaded from the log"
    );
    let (feed, relay_feed) = Feed::channel();
    // Aborting the handler (a crash in tests) aborts its relay too.
    let mut relay = Some(AbortOnDropHandle::new(tokio::spawn(run_relay(
        handler.store.clone(),
        js.clone(),
        handler.names.clone(),
        relay_feed,
        shutdown.clone(),
    ))));
    let sealer = AbortOnDropHandle::new(tokio::spawn(run_sealer(
        handler.store.clone(),
        shutdown.clone(),
        SEAL_INTERVAL,
    )));
    let lease = handler.settings.executor_lease;
    let (holdings, holdings_seen) = tokio::sync::watch::channel(held(&lab));
    let lease_watch = AbortOnDropHandle::new(tokio::spawn(watch_leases(
        handler.nats.clone(),
        handler.names.clone(),
        liveness,
        lease,
        holdings_seen,
        shutdown.clone(),
    )));
    let (quarantines, quarantines_seen) = tokio::sync::watch::channel(quarantine_ends(&lab));
    let lapses = CommandSender::new(
        handler.nats.clone(),
        handler.names.clone(),
        LAPSE_TIMEOUT,
        LAPSE_ATTEMPTS,
    );
    let quarantine_watch = AbortOnDropHandle::new(tokio::spawn(watch_quarantines(
        lapses,
        quarantines_seen,
        shutdown.clone(),
    )));
    let max_batch = handler.settings.max_batch.max(1);
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(max_batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|err| HandlerError::Consumer(err.into()))?;
    let mut intake = Intake {
        handler,
        lab,
        feed,
        shutdown: shutdown.clone(),
    };
    let mut ended = Ok(());
    let mut in_flight: Option<InFlight> = None;
    let mut lease_tick = tokio::time::interval(tick_every(lease));
    lease_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => Wake::Stop,
            _ = lease_tick.tick() => Wake::LeaseTick,
            result = completion(&mut in_flight) => Wake::Committed(result),
            joined = relay_stopped(&mut relay) => Wake::RelayStopped(joined),
            message = messages.next() => Wake::Message(message.map(|m| m.map(Box::new))),
        };
        let first = match event {
            Wake::Stop => break,
            Wake::LeaseTick => {
                holdings.send_replace(held(&intake.lab));
                quarantines.send_replace(quarantine_ends(&intake.lab));
                continue;
            }
            Wake::Committed(result) => {
                if let Some(done) = in_flight.take() {
                    in_flight = intake.finish(done.group, result, None).await;
                }
                continue;
            }
            Wake::RelayStopped(joined) => {
                relay = None;
                ended = match joined {
                    Ok(Err(refusal)) => Err(refusal.into()),
                    Ok(Ok(())) => Ok(()),
                    Err(err) => {
                        tracing::error!(error = %err, "outbox relay task failed");
                        Ok(())
                    }
                };
                break;
            }
            Wake::Message(None) => {
                ended = Err(HandlerError::ConsumerEnded);
                break;
            }
            Wake::Message(Some(Err(err))) => {
                tracing::warn!(error = %err, "commands consumer hiccup");
                continue;
            }
            Wake::Message(Some(Ok(message))) => *message,
        };
        let group = gather_rest(first, &mut messages, max_batch, LINGER).await;
        let after = in_flight.as_mut().and_then(InFlight::take_ended);
        let next = intake.start(group, after).await;
        in_flight = match in_flight.take() {
            Some(previous) => {
                let result = previous.task.await;
                intake.finish(previous.group, result, next).await
            }
            None => next,
        };
    }
    if let Some(last) = in_flight.take() {
        let result = last.task.await;
        intake.finish(last.group, result, None).await;
    }
    hand_back(&mut messages).await;
    shutdown.cancel();
    if let Some(relay) = relay {
        match relay.await {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => ended = ended.and(Err(refusal.into())),
            Err(err) => tracing::error!(error = %err, "outbox relay task failed"),
        }
    }
    if let Err(err) = sealer.await {
        tracing::error!(error = %err, "sealer task failed");
    }
    if let Err(err) = lease_watch.await {
        tracing::error!(error = %err, "lease watch task failed");
    }
    if let Err(err) = quarantine_watch.await {
        tracing::error!(error = %err, "quarantine watch task failed");
    }
    ended
}

/// Waits for the relay to stop, for ever when it has already been seen stopping.
async fn relay_stopped(
    relay: &mut Option<AbortOnDropHandle<Result<(), Refusal>>>,
) -> Result<Result<(), Refusal>, tokio::task::JoinError> {
    match relay {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// How long shutdown keeps taking messages already routed to this handler, to hand them back.
const HAND_BACK_FOR: Duration = Duration::from_millis(500);
/// A quiet gap that ends the hand-back early.
const HAND_BACK_IDLE: Duration = Duration::from_millis(100);
/// When handed-back messages are delivered again: after this process has gone, so another
/// handler gets them, not this one.
const HAND_BACK_DELAY: Duration = Duration::from_secs(1);

/// On shutdown, hands back (NAK, delayed past this process's exit) the messages already pulled or
/// routed to this handler but not decided, so another handler gets them in about a second rather
/// than after their ack wait.
async fn hand_back<S, E>(messages: &mut S)
where
    S: futures::Stream<Item = Result<async_nats::jetstream::Message, E>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + HAND_BACK_FOR;
    let mut handed_back = 0_usize;
    loop {
        let wait =
            HAND_BACK_IDLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let Ok(Some(Ok(message))) = tokio::time::timeout(wait, messages.next()).await else {
            break;
        };
        let nak = async_nats::jetstream::AckKind::Nak(Some(HAND_BACK_DELAY));
        if let Err(err) = message.ack_with(nak).await {
            tracing::warn!(error = %err, "cannot hand a command back; it is redelivered after its ack wait");
        }
        handed_back += 1;
    }
    if handed_back > 0 {
        tracing::info!(
            handed_back,
            "commands handed back to the stream for another handler"
        );
    }
}
