//! Pipelined group commit: while one group's transaction is in Postgres, the next group is
//! decided on top of it, speculatively. The next group's append names the log head the first one
//! leads to, so it can only commit after it; it is sent once the first append has ended (one
//! statement each, see `EventStore::append`). If a group fails, its decisions and those of the
//! group started on top of it are void: the lab goes back to what it was before the failed group
//! and both groups are handled the careful way ([`Intake::process_inbound`]).

use crate::decide::{decide_round, now};
use crate::group::{Intake, fresh};
use crate::inbound::{Inbound, prepare};
use crate::lab_sync::catch_up;
use async_nats::jetstream::Message;
use runledger_domain::Lab;
use runledger_store::{AppendBatch, Appended, EventStore, StoreError};
use runledger_types::{CommandId, Outcome};
use std::collections::HashMap;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};

/// What an append task ends with.
pub(crate) type AppendResult = Result<Result<Appended, StoreError>, JoinError>;

/// A decided group whose append is under way.
pub(crate) struct InFlight {
    /// The append.
    pub task: JoinHandle<Result<Appended, StoreError>>,
    /// What to answer once it commits.
    pub group: Decided,
    /// Resolves once the append has ended, with whether it committed: the group decided on top
    /// of this one sends its own append only then, or it would find the head not yet moved.
    ended: Option<oneshot::Receiver<bool>>,
}

impl InFlight {
    /// What the group decided on top of this one waits for before it appends.
    pub(crate) fn take_ended(&mut self) -> Option<oneshot::Receiver<bool>> {
        self.ended.take()
    }
}

/// A group's messages and the lab before its decisions.
pub(crate) struct Decided {
    inbound: Vec<Inbound>,
    lab_before: Lab,
}

impl Intake {
    /// Prepares and decides a group on top of whatever is in flight, and starts its append.
    /// `None` when the group went the careful way instead.
    ///
    /// Commands are not looked up first: a command handled before (a redelivery) makes the
    /// append fail on the `commands` key, and the careful way then looks it up. That costs a
    /// retry after a crash and saves a query per group the rest of the time.
    /// `after` is the end of the append this group is decided on top of, if any.
    pub(crate) async fn start(
        &mut self,
        messages: Vec<Message>,
        after: Option<oneshot::Receiver<bool>>,
    ) -> Option<InFlight> {
        let on_top = after.is_some();
        let inbound = prepare(messages, &self.handler.names, &self.handler.keyring).await;
        if !on_top && catch_up(&self.handler.store, &mut self.lab).await.is_err() {
            self.process_inbound(&inbound).await;
            return None;
        }
        let lab_before = self.lab.clone();
        let max_event_bytes = self.handler.max_event_bytes();
        let batch = decide_round(
            &mut self.lab,
            &fresh(&inbound, &HashMap::new()),
            now(),
            max_event_bytes,
        );
        self.lab
            .set_position(lab_before.position() + batch.events.len() as i64);
        let store = self.handler.store.clone();
        let (ended, ended_rx) = oneshot::channel();
        let task = tokio::spawn(append_on_top(store, batch, after, ended));
        let group = Decided {
            inbound,
            lab_before,
        };
        Some(InFlight {
            task,
            group,
            ended: Some(ended_rx),
        })
    }

    /// Completes a group whose append ended with `result`. On success it is answered and `next`
    /// (started on top of it) stays in flight; on failure both are redone the careful way.
    pub(crate) async fn finish(
        &mut self,
        group: Decided,
        result: AppendResult,
        next: Option<InFlight>,
    ) -> Option<InFlight> {
        match result {
            Ok(Ok(appended)) => {
                let outcomes: HashMap<CommandId, Outcome> = self
                    .committed(appended)
                    .into_iter()
                    .map(|outcome| (outcome.command_id, outcome))
                    .collect();
                self.respond(&group.inbound, &outcomes).await;
                next
            }
            failure => {
                self.redo(group, failure, next).await;
                None
            }
        }
    }

    async fn redo(&mut self, group: Decided, failure: AppendResult, next: Option<InFlight>) {
        match failure {
            Ok(Err(err)) if err.is_conflict() => {
                self.handler.stats.conflicted();
                tracing::debug!(error = %err, "pipelined group lost a race; redoing it");
            }
            Ok(Err(err)) if err.is_already_handled() => {
                tracing::debug!("a pipelined group repeats a handled command; redoing it")
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "pipelined append failed; redoing"),
            Err(err) => tracing::error!(error = %err, "append task failed; redoing"),
            Ok(Ok(_)) => {}
        }
        // The next group's append was not sent (it only goes on top of a committed group); the
        // careful way decides its commands again against the log.
        let next = match next {
            Some(next) => {
                let _ = next.task.await;
                Some(next.group)
            }
            None => None,
        };
        self.lab = group.lab_before;
        self.process_inbound(&group.inbound).await;
        if let Some(next) = next {
            self.process_inbound(&next.inbound).await;
        }
    }
}

/// Appends `batch` once the append it was decided on top of (`after`) has committed, and says
/// on `ended` whether this one did. If the one beneath did not commit, neither may this one,
/// though the head it names may have been reached by another handler's events meanwhile: it
/// fails as a conflict without being sent.
async fn append_on_top(
    store: EventStore,
    batch: AppendBatch,
    after: Option<oneshot::Receiver<bool>>,
    ended: oneshot::Sender<bool>,
) -> Result<Appended, StoreError> {
    if let Some(previous) = after {
        // Err: the previous task is gone without saying, so it did not commit.
        if !previous.await.unwrap_or(false) {
            let _ = ended.send(false);
            return Err(StoreError::Conflict(
                "the group this one was decided on top of was not committed".to_owned(),
            ));
        }
    }
    let started = std::time::Instant::now();
    let appended = store.append(&batch).await;
    metrics::histogram!("runledger_append_seconds").record(started.elapsed().as_secs_f64());
    let _ = ended.send(appended.is_ok());
    appended
}

/// Waits for the in-flight append, if any (never resolves otherwise).
pub(crate) async fn completion(in_flight: &mut Option<InFlight>) -> AppendResult {
    match in_flight {
        Some(flight) => (&mut flight.task).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
