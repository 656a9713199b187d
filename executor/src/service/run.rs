//! One `run_assigned` work item: claim the run, drive it, ack.

use base64::Engine as _;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::NatsReporter;
use super::Worker;
use super::venv::settle;
use crate::driver::{RunJob, drive_run};
use crate::feed::{ViewHandle, WorkItem};
use crate::view::{Resolved, ResolvedRun};
use runledger_types::command::ReportRunStarted;
use runledger_types::{Event, RunId};

/// Executes the run `item` assigns, if it is still current and this executor wins the claim
/// (`report_run_started` accepted with a `run_started` event); acks the item once the run's end
/// is reported, or at once when there is nothing to do.
pub(crate) async fn handle(worker: &Worker, item: WorkItem) {
    let Event::RunAssigned(assigned) = &item.event else {
        tracing::warn!(
            position = item.position,
            "not a run_assigned event; skipping"
        );
        settle(&item).await;
        return;
    };
    let run_id = assigned.run_id;
    let venv_id = assigned.venv_id.map(|id| id.to_string());
    let correlation_id = item.meta.correlation_id.map(|id| id.to_string());
    let span = tracing::info_span!("run", %run_id, venv_id = venv_id.as_deref().unwrap_or("none"), position = item.position, event_id = %item.meta.event_id, correlation_id = correlation_id.as_deref().unwrap_or("none"));
    execute(worker, &item, run_id).instrument(span).await;
}

async fn execute(worker: &Worker, item: &WorkItem, run_id: RunId) {
    let resolved = match worker.view.read(|view| view.resolve(run_id)) {
        Ok(run) if run.assignment().position == item.position => run,
        Ok(_) => {
            tracing::info!("stale assignment; skipping");
            return settle(item).await;
        }
        Err(err) => {
            tracing::info!(reason = %err, "nothing to run; skipping");
            return settle(item).await;
        }
    };
    // Held before the claim, so the heartbeat never misses a run this process started.
    let Some(_held) = worker.held.hold(run_id) else {
        tracing::info!("this process already drives the run; skipping");
        return settle(item).await;
    };
    let reporter = worker
        .reporter
        .caused_by(item.meta.event_id)
        .correlated(item.meta.correlation_id);
    match reporter.send(&ReportRunStarted { run_id }).await {
        Ok(outcome) if outcome.events.iter().any(|e| e.event_type == "run_started") => {}
        Ok(outcome) => {
            tracing::info!(error = ?outcome.error, "claim refused; skipping");
            return settle(item).await;
        }
        Err(err) => {
            // Leave the item unacked: it is delivered again once its ack wait passes.
            tracing::warn!(error = %err, "claim not delivered");
            return;
        }
    }
    let cancel = CancellationToken::new();
    let work = async {
        match &resolved {
            Resolved::Venv(run) => drive_on_machine(worker, run, &reporter, &cancel).await,
            Resolved::Jenkins(run) => super::jenkins::drive(worker, run, &reporter, &cancel).await,
        }
    };
    let done = tokio::select! {
        done = work => done,
        err = item.keep_alive(worker.keep_alive_every) => Err(err.to_string()),
        () = watch_cancel(worker.view.clone(), run_id, item.position, cancel.clone()) => {
            Err("the events follower stopped".to_owned())
        }
    };
    match done {
        Ok(()) => settle(item).await,
        Err(err) => tracing::error!(error = %err, "run end not reported"),
    }
}

/// Connects to the run's machine and drives the run there; reports an unreachable machine as
/// the run's end. `Err` says the end could not be reported.
async fn drive_on_machine(
    worker: &Worker,
    run: &ResolvedRun,
    reporter: &NatsReporter,
    cancel: &CancellationToken,
) -> Result<(), String> {
    match worker.machines.connect(&run.machine, reporter).await {
        Ok(transport) => drive_run(&transport, &job(run), reporter, cancel.clone())
            .await
            .map(|_| ())
            .map_err(|err| err.source.to_string()),
        Err(unreachable) => {
            tracing::warn!(reason = %unreachable.reason, "cannot reach the machine");
            let code = unreachable.kind.error_code().as_str();
            reporter
                .report_error_end(run.run_id, code, &unreachable.reason)
                .await
                .map(drop)
                .map_err(|err| err.to_string())
        }
    }
}

/// Cancels `cancel` once the view shows `cancel_requested` for the run, or shows that the run
/// is no longer this assignment's (its lease expired and it was queued again or ended); returns
/// only if the view stops moving.
async fn watch_cancel(
    view: ViewHandle,
    run_id: RunId,
    assigned_at: i64,
    cancel: CancellationToken,
) {
    loop {
        let position = view.position();
        let (requested, taken) = view.read(|v| match v.run(run_id) {
            Some(run) => (
                run.cancel_requested,
                run.assignment.is_none_or(|a| a.position != assigned_at),
            ),
            None => (false, v.finished(run_id).is_some()),
        });
        if (requested || taken) && !cancel.is_cancelled() {
            if taken {
                tracing::info!("the run has ended or is no longer this executor's; stopping it");
            } else {
                tracing::info!("cancellation requested");
            }
            cancel.cancel();
        }
        if view.wait_for(position + 1).await.is_err() {
            return;
        }
    }
}

/// The driver's job for a resolved run. Files whose base64 cannot be decoded are passed empty
/// (the handler validated them when the test case was defined).
fn job(run: &ResolvedRun) -> RunJob {
    let files = run
        .test_case
        .files
        .iter()
        .map(|file| {
            let contents = match (&file.content, &file.content_base64) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_default(),
                (None, None) => Vec::new(),
            };
            (file.path.as_str().to_owned(), contents)
        })
        .collect();
    RunJob {
        run_id: run.run_id,
        os: run.machine.os,
        venv_path: run.venv.path.as_str().to_owned(),
        command: run
            .test_case
            .command
            .as_ref()
            .map(|command| command.as_str().to_owned())
            .unwrap_or_default(),
        test_case_env: run.test_case.env.clone(),
        run_env: run.run_env.clone(),
        tests: run.tests.clone(),
        files,
        timeout: Duration::from_secs(u64::from(run.test_case.timeout_s)),
        max_output_bytes: run.test_case.max_output_bytes,
        junit_xml: run
            .test_case
            .junit_xml
            .as_ref()
            .map(|path| path.as_str().to_owned()),
        after_seq: crate::chunker::first_seq_of_attempt(run.assignment.attempt),
        shard: run.shard.clone(),
    }
}
