//! Keeping the lease: the runs this process drives ([`HeldRuns`]), the heartbeat that names
//! them every `heartbeat_every`, and the reconciliation of runs the log says this executor
//! started but this process does not drive: what an earlier process under the same name held
//! when it died. Those get their leftover processes ended ([`render::end_leftovers`]) and end
//! as `error` (`executor_lost`), which retries them when their test case allows it. Attempts
//! of this executor that the handler already declared lost (its lease expired while it was
//! down) get their leftovers ended too, once per process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use runledger_types::RunId;
use runledger_types::command::ExecutorHeartbeat;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Worker;
use crate::render;
use crate::ssh::RemoteExit;
use crate::view::{MachineInfo, Resolved};

/// The runs this process is driving (or reconciling) right now.
#[derive(Debug, Default, Clone)]
pub(crate) struct HeldRuns(Arc<Mutex<BTreeSet<RunId>>>);

impl HeldRuns {
    /// Marks `run_id` held until the returned guard is dropped; `None` if it already is.
    pub(crate) fn hold(&self, run_id: RunId) -> Option<Held> {
        let inserted = self.lock().insert(run_id);
        inserted.then(|| Held {
            runs: self.clone(),
            run_id,
        })
    }

    /// The held runs, ascending.
    pub(crate) fn snapshot(&self) -> Vec<RunId> {
        self.lock().iter().copied().collect()
    }

    fn contains(&self, run_id: RunId) -> bool {
        self.lock().contains(&run_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<RunId>> {
        // The set stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A run held by this process; released on drop.
#[derive(Debug)]
pub(crate) struct Held {
    runs: HeldRuns,
    run_id: RunId,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.run_id);
    }
}

/// Sends a heartbeat every `every` until `shutdown`, and reconciles orphaned runs: runs started
/// under this executor's name that no task of this process holds, seen so on two heartbeats in a
/// row (so a view still catching up with the log does not trigger it).
pub(crate) async fn keep_lease(worker: Arc<Worker>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut suspects: BTreeSet<RunId> = BTreeSet::new();
    let mut abandoned_before: BTreeMap<RunId, MachineInfo> = BTreeMap::new();
    let mut cleaned: BTreeSet<RunId> = BTreeSet::new();
    let mut reconciling = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let run_ids = worker.held.snapshot();
        metrics::gauge!("runledger_executor_active_runs", "executor" => worker.name.clone())
            .set(run_ids.len() as f64);
        metrics::counter!("runledger_executor_heartbeats_total", "executor" => worker.name.clone())
            .increment(1);
        let heartbeat = ExecutorHeartbeat {
            run_ids: run_ids.into_iter().collect(),
        };
        if let Err(err) = worker.reporter.send(&heartbeat).await {
            tracing::warn!(error = %err, "heartbeat not delivered");
        }
        while reconciling.try_join_next().is_some() {}
        let orphans: BTreeSet<RunId> = worker
            .view
            .read(|view| view.runs_started_by(&worker.name))
            .into_iter()
            .filter(|run_id| !worker.held.contains(*run_id))
            .collect();
        for run_id in orphans.intersection(&suspects) {
            if let Some(held) = worker.held.hold(*run_id) {
                let worker = Arc::clone(&worker);
                let span = tracing::info_span!("reconcile", run_id = %run_id);
                reconciling.spawn(
                    async move {
                        reconcile(&worker, held.run_id).await;
                        drop(held);
                    }
                    .instrument(span),
                );
            }
        }
        suspects = orphans;
        let abandoned: BTreeMap<RunId, MachineInfo> = worker
            .view
            .read(|view| view.abandoned_by(&worker.name))
            .into_iter()
            .filter(|(run_id, _)| !worker.held.contains(*run_id) && !cleaned.contains(run_id))
            .collect();
        for (run_id, machine) in &abandoned {
            if abandoned_before.contains_key(run_id) && cleaned.insert(*run_id) {
                let (worker, machine) = (Arc::clone(&worker), machine.clone());
                let span = tracing::info_span!("clean_up", run_id = %run_id);
                let run_id = *run_id;
                reconciling.spawn(
                    async move {
                        tracing::info!("a lost attempt of this executor; ending its leftovers");
                        end_leftovers(&worker, run_id, &machine).await;
                    }
                    .instrument(span),
                );
            }
        }
        abandoned_before = abandoned;
    }
    reconciling.abort_all();
}

/// Ends what an earlier process left of `run_id` and reports the run lost. A run of a Jenkins
/// job leaves nothing on a machine: its next attempt follows the same build.
async fn reconcile(worker: &Worker, run_id: RunId) {
    let Ok(run) = worker.view.read(|view| view.resolve(run_id)) else {
        return;
    };
    tracing::warn!("run started by an earlier process of this executor; ending it");
    if let Resolved::Venv(run) = &run {
        end_leftovers(worker, run_id, &run.machine).await;
    }
    let reason = format!("executor lost: {} restarted while running it", worker.name);
    let reported = worker
        .reporter
        .report_error_end(run_id, "executor_lost", &reason)
        .await;
    if let Err(err) = reported {
        tracing::warn!(error = %err, "lost run not reported; trying again on a later heartbeat");
    }
}

/// Ends the processes `run_id` left on `machine` and removes its working directory.
pub(super) async fn end_leftovers(worker: &Worker, run_id: RunId, machine: &MachineInfo) {
    let os = machine.os;
    match worker.machines.connect(machine, &worker.reporter).await {
        Ok(transport) => {
            let script = render::ssh_exec_line(os, &render::end_leftovers(os, run_id));
            match transport.exec_quiet(&script).await {
                Ok(RemoteExit::Code(0)) => tracing::info!("leftover processes ended"),
                other => tracing::warn!(?other, "ending leftover processes failed"),
            }
        }
        Err(unreachable) => {
            tracing::warn!(reason = %unreachable.reason, "cannot reach the machine to end leftover processes");
        }
    }
}
