//! One `run_finished` work item: a run that ended in error may leave work behind, which
//! whichever executor takes the item ends:
//! - a run of a Jenkins job (its executor lost, Jenkins unreachable, retries used up) may leave
//!   its build running in Jenkins: the build is stopped, or its queue item cancelled;
//! - a run whose executor was lost (`executor_lost`) may leave its processes running on the
//!   machine, in a venv that may already serve the next run: they are ended and the working
//!   directory removed, even if that executor never comes back.

use super::Worker;
use super::lease::end_leftovers;
use super::venv::settle;
use crate::feed::WorkItem;
use crate::view::EndedJenkinsRun;
use runledger_types::{Event, RunStatus};
use tracing::Instrument;

/// Ends what the ended run left (a Jenkins build, or processes on a machine), then acks the
/// item; what cannot be ended is logged: there is nothing else to do about it.
pub(crate) async fn handle(worker: &Worker, item: WorkItem) {
    let Event::RunFinished(finished) = &item.event else {
        return settle(&item).await;
    };
    if finished.status != RunStatus::Error {
        return settle(&item).await;
    }
    let run_id = finished.run_id;
    let span = tracing::info_span!("clean_up", %run_id, position = item.position);
    let (jenkins, machine) = worker.view.read(|view| {
        (
            view.ended_jenkins(run_id).cloned(),
            view.lost_attempt_machine(run_id),
        )
    });
    if let Some(ended) = jenkins {
        stop_build(worker, &ended).instrument(span).await;
    } else if let Some(machine) = machine {
        async {
            tracing::info!("the run's executor was lost; ending what it left on the machine");
            end_leftovers(worker, run_id, &machine).await;
        }
        .instrument(span)
        .await;
    }
    settle(&item).await;
}

/// Stops the Jenkins build (or cancels the queue item) an ended run recorded.
async fn stop_build(worker: &Worker, ended: &EndedJenkinsRun) {
    let client = match super::jenkins::client(worker, &ended.job) {
        Ok(client) => client,
        Err((_, reason)) => {
            tracing::warn!(%reason, "cannot stop the Jenkins build of an ended run");
            return;
        }
    };
    let stopped = match (&ended.build, &ended.queue_item) {
        (Some((number, url)), _) => {
            tracing::info!(number, %url, "the run ended in error; stopping its Jenkins build");
            client.stop(url.as_str(), "stop").await
        }
        (None, Some(queue_item)) => {
            tracing::info!(%queue_item, "the run ended in error; cancelling its queue item");
            client.cancel_queued(queue_item.as_str()).await
        }
        (None, None) => Ok(()),
    };
    if let Err(err) = stopped {
        tracing::warn!(error = %err, "the Jenkins build of an ended run could not be stopped");
    }
}
