//! Waiting for and watching a prefix's events stream's claim, for components that have no say
//! in it: executors wait until a handler has claimed the stream, gateways watch that it stays
//! their log's. Both report on the [`Wedges`] board while they cannot go on.

use crate::claim::{Refusal, StreamState, observe};
use crate::identity::StreamClaim;
use crate::names::BusNames;
use crate::setup::BusError;
use crate::wedges::Wedges;
use async_nats::jetstream;
use runledger_types::LogId;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a stream's claim is looked at again.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Waits until `<PREFIX>_EVENTS` exists and carries a claim, and returns it; `None` once
/// `shutdown` fires. Meanwhile `component` is wedged on `wedges`, with the reason.
pub async fn await_claim(
    js: &jetstream::Context,
    names: &BusNames,
    wedges: &Wedges,
    component: &str,
    shutdown: &CancellationToken,
) -> Result<Option<StreamClaim>, BusError> {
    let name = names.events_stream();
    loop {
        match observe(js, &name).await? {
            Some(state) if state.claim.is_some() => {
                wedges.clear(component);
                return Ok(state.claim);
            }
            Some(_) => wedges.set(
                component,
                format!(
                    "NATS stream {name} carries no log identity yet: waiting for a handler to \
                     claim it (a handler refuses a stream holding another log's events)"
                ),
            ),
            None => wedges.set(
                component,
                format!("NATS stream {name} does not exist yet: waiting for a handler"),
            ),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// What [`watch_claim`] watches, and where it reports.
#[derive(Debug, Clone)]
pub struct ClaimWatch {
    /// JetStream.
    pub js: jetstream::Context,
    /// The prefix's names.
    pub names: BusNames,
    /// The log the stream must belong to.
    pub ours: LogId,
    /// Where the component says it is wedged.
    pub wedges: Wedges,
    /// The component's name on the board.
    pub component: &'static str,
    /// How often the stream is looked at.
    pub every: Duration,
}

/// Until `shutdown`, looks at whether `<PREFIX>_EVENTS` is claimed by another log than
/// `watch.ours`; while it is, the component is wedged on the board with the reason.
pub async fn watch_claim(watch: ClaimWatch, shutdown: CancellationToken) {
    let name = watch.names.events_stream();
    loop {
        match observe(&watch.js, &name).await {
            Ok(Some(StreamState {
                claim: Some(claim), ..
            })) if claim.log != watch.ours => {
                let refusal = Refusal::OtherLog {
                    stream: name.clone(),
                    ours: watch.ours,
                    theirs: claim.log,
                };
                watch.wedges.set(watch.component, refusal.to_string());
            }
            Ok(_) => watch.wedges.clear(watch.component),
            Err(err) => {
                tracing::warn!(error = %err, stream = %name, "cannot look at the events stream's log identity")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(watch.every) => {}
        }
    }
}
