//! Handling one group of commands: look up those already handled, decide the rest together,
//! append them in one transaction (retrying conflicts and outages), answer each, then ack.

use crate::decide::{decide_round, now, reject};
use crate::feed::FeedSender;
use crate::inbound::Inbound;
use crate::intake::Handler;
use crate::lab_sync::catch_up;
use runledger_domain::Lab;
use runledger_store::{AppendBatch, Appended, StoreError};
use runledger_types::{CommandId, Outcome, Rejection, RejectionCode};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The commands of `inbound` not handled before (not in `known`), each id once.
pub(crate) fn fresh<'a>(
    inbound: &'a [Inbound],
    known: &HashMap<CommandId, Outcome>,
) -> Vec<&'a Inbound> {
    let mut seen = HashSet::new();
    inbound
        .iter()
        .filter(|item| {
            let id = item.meta().command_id;
            !known.contains_key(&id) && seen.insert(id)
        })
        .collect()
}

/// Conflicts in a row after which a group is treated as poisoned and split up.
const MAX_CONFLICTS: u32 = 50;

/// The intake's state: the handler's connections and the lab as of the last commit it saw.
pub(crate) struct Intake {
    pub handler: Handler,
    pub lab: Lab,
    /// Hands committed events to this process's relay.
    pub feed: FeedSender,
    pub shutdown: CancellationToken,
}

enum GroupError {
    /// Postgres refused the data: split the group.
    Data(StoreError),
    /// Stop: see [`Halt`].
    Halt(Halt),
}

/// Why handling a group stops before every command has an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// Shutting down while the database was unavailable: leave the messages for redelivery.
    Abandoned,
    /// A command was recorded meanwhile (another handler, a redelivery): look outcomes up again.
    AlreadyHandled,
}

/// Look-up rounds after which a group whose commands keep being handled elsewhere is left for
/// redelivery.
const MAX_LOOKUPS: u32 = 10;

impl Intake {
    /// Handles one prepared group on its own, without speculation (the careful way); never
    /// fails: every error is retried, answered or left for redelivery.
    #[tracing::instrument(level = "debug", skip_all, fields(commands = inbound.len(),
        first_command_id = inbound.first().map(|item| tracing::field::display(item.meta().command_id))))]
    pub(crate) async fn process_inbound(&mut self, inbound: &[Inbound]) {
        let ids: Vec<CommandId> = inbound.iter().map(|item| item.meta().command_id).collect();
        for _ in 0..MAX_LOOKUPS {
            let Some(mut outcomes) = self.known_outcomes(&ids).await else {
                return;
            };
            let fresh = fresh(inbound, &outcomes);
            if !fresh.is_empty() {
                match self.commit(&fresh).await {
                    Ok(decided) => outcomes.extend(decided.into_iter().map(|o| (o.command_id, o))),
                    Err(Halt::AlreadyHandled) => continue,
                    Err(Halt::Abandoned) => return,
                }
            }
            self.respond(inbound, &outcomes).await;
            return;
        }
        tracing::warn!(
            count = inbound.len(),
            "commands keep being handled elsewhere; leaving them for redelivery"
        );
    }

    /// Answers and acks every message whose command has an outcome.
    pub(crate) async fn respond(
        &self,
        inbound: &[Inbound],
        outcomes: &HashMap<CommandId, Outcome>,
    ) {
        for item in inbound {
            let id = item.meta().command_id;
            if let Some(outcome) = outcomes.get(&id) {
                count_outcome(&item.meta().command_type, outcome);
                self.answer(outcome).await;
                if let Err(err) = item.msg.ack().await {
                    tracing::warn!(command_id = %id, error = %err, "ack failed; the command will be redelivered and answered again");
                }
            }
        }
        tracing::debug!(count = inbound.len(), "command group answered");
    }

    /// Bookkeeping after a commit: counts it, hands its events to the relay, returns the outcomes.
    pub(crate) fn committed(&self, appended: Appended) -> Vec<Outcome> {
        self.handler.stats.committed(appended.outcomes.len());
        for event in appended
            .events
            .iter()
            .filter(|e| e.event_type == "run_finished")
        {
            let status = serde_json::from_str::<FinishedStatus>(event.data.get())
                .map_or("unknown", |finished| finished.status.as_str());
            metrics::counter!("runledger_runs_finished_total", "status" => status).increment(1);
        }
        // The relay may be gone (shutting down); it then reads the log on restart.
        let _ = self.feed.send(appended.events);
        appended.outcomes
    }

    async fn known_outcomes(&self, ids: &[CommandId]) -> Option<HashMap<CommandId, Outcome>> {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.handler.store.outcomes(ids).await {
                Ok(known) => return Some(known),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot look up handled commands; retrying");
                    if !self.pause(&mut delay).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Appends the group; on a data error, each command alone; a command that still cannot be
    /// stored is rejected with `storage_error`.
    async fn commit(&mut self, items: &[&Inbound]) -> Result<Vec<Outcome>, Halt> {
        match self.commit_group(items).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(GroupError::Halt(halt)) => return Err(halt),
            Err(GroupError::Data(err)) => {
                tracing::warn!(error = %err, size = items.len(), "group refused by the database; retrying one by one");
            }
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            match self.commit_group(&[item]).await {
                Ok(mut single) => outcomes.append(&mut single),
                Err(GroupError::Halt(halt)) => return Err(halt),
                Err(GroupError::Data(err)) => {
                    let rejection = Rejection::new(
                        RejectionCode::StorageError,
                        format!("the command's events could not be stored: {err}"),
                    );
                    outcomes.append(&mut self.commit_rejection(item, rejection).await?);
                }
            }
        }
        Ok(outcomes)
    }

    async fn commit_group(&mut self, items: &[&Inbound]) -> Result<Vec<Outcome>, GroupError> {
        let max_event_bytes = self.handler.max_event_bytes();
        self.append_with(|lab| decide_round(lab, items, now(), max_event_bytes))
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(command_id = %item.meta().command_id,
        command_type = %item.meta().command_type, code = %rejection.code))]
    async fn commit_rejection(
        &mut self,
        item: &Inbound,
        rejection: Rejection,
    ) -> Result<Vec<Outcome>, Halt> {
        let meta = item.meta().clone();
        let result = self
            .append_with(|lab| {
                let mut batch = AppendBatch {
                    expected_head: Some(lab.position()),
                    ..AppendBatch::default()
                };
                reject(lab, &mut batch, &meta, rejection.clone(), now());
                batch
            })
            .await;
        match result {
            Ok(outcomes) => Ok(outcomes),
            Err(GroupError::Data(err)) => {
                tracing::error!(command_id = %meta.command_id, error = %err, "cannot even record the rejection; leaving the message for redelivery");
                Err(Halt::Abandoned)
            }
            Err(GroupError::Halt(halt)) => Err(halt),
        }
    }

    /// Catches up, decides with `build`, appends; retries conflicts and outages.
    async fn append_with(
        &mut self,
        mut build: impl FnMut(&mut Lab) -> AppendBatch,
    ) -> Result<Vec<Outcome>, GroupError> {
        let mut conflicts = 0;
        let mut delay = Duration::from_millis(50);
        loop {
            if let Err(err) = catch_up(&self.handler.store, &mut self.lab).await {
                tracing::warn!(error = %err, "cannot read the log; retrying");
                if !self.pause(&mut delay).await {
                    return Err(GroupError::Halt(Halt::Abandoned));
                }
                continue;
            }
            let snapshot = self.lab.clone();
            let batch = build(&mut self.lab);
            let started = std::time::Instant::now();
            let appended = self.handler.store.append(&batch).await;
            metrics::histogram!("runledger_append_seconds").record(started.elapsed().as_secs_f64());
            match appended {
                Ok(appended) => {
                    let head = snapshot.position() + batch.events.len() as i64;
                    self.lab.set_position(head);
                    return Ok(self.committed(appended));
                }
                Err(err) => {
                    self.lab = snapshot;
                    if err.is_already_handled() {
                        return Err(GroupError::Halt(Halt::AlreadyHandled));
                    }
                    if err.is_conflict() && conflicts < MAX_CONFLICTS {
                        conflicts += 1;
                        self.handler.stats.conflicted();
                        tracing::debug!(error = %err, conflicts, "append conflict; reloading and deciding again");
                    } else if err.is_conflict() || err.is_data_error() {
                        return Err(GroupError::Data(err));
                    } else {
                        tracing::warn!(error = %err, "append failed; retrying");
                        if !self.pause(&mut delay).await {
                            return Err(GroupError::Halt(Halt::Abandoned));
                        }
                    }
                }
            }
        }
    }

    /// Sleeps with exponential backoff; false when shutdown came first.
    async fn pause(&self, delay: &mut Duration) -> bool {
        let wait = *delay;
        *delay = (*delay * 2).min(Duration::from_secs(5));
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(command_id = %outcome.command_id,
        accepted = outcome.accepted))]
    async fn answer(&self, outcome: &Outcome) {
        let subject = self.handler.names.outcome_subject(outcome.command_id);
        match serde_json::to_vec(outcome) {
            Ok(body) => {
                if let Err(err) = self.handler.nats.publish(subject, body.into()).await {
                    tracing::warn!(command_id = %outcome.command_id, error = %err, "cannot publish outcome");
                }
            }
            Err(err) => tracing::error!(error = %err, "outcome does not serialise"),
        }
    }
}

/// `runledger_commands_total{type, outcome}` and, for a rejection,
/// `runledger_commands_rejected_total{type, code}`. Unknown command types count as `unknown`, so
/// input cannot grow the label set.
fn count_outcome(command_type: &str, outcome: &Outcome) {
    let kind = runledger_types::command::CommandType::from_name(command_type)
        .map_or("unknown", |kind| kind.as_str());
    let result = if outcome.accepted {
        "accepted"
    } else {
        "rejected"
    };
    metrics::counter!("runledger_commands_total", "type" => kind, "outcome" => result).increment(1);
    if let Some(error) = &outcome.error {
        metrics::counter!("runledger_commands_rejected_total", "type" => kind, "code" => error.code.as_str())
            .increment(1);
    }
}

/// The one field of `run_finished` the run counter needs.
#[derive(serde::Deserialize)]
struct FinishedStatus {
    status: runledger_types::RunStatus,
}
