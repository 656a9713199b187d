//! One `run_finished` work item: a run of a Jenkins job that ended in error (its executor lost,
//! Jenkins unreachable, retries used up) may leave its build running in Jenkins; the build is
//! stopped, or its queue item cancelled, by whichever executor takes the item.

use super::Worker;
use super::venv::settle;
use crate::feed::WorkItem;
use runledger_types::{Event, RunStatus};
use tracing::Instrument;

/// Stops the build the ended run recorded, if any, then acks the item (a build that cannot be
/// stopped is logged: there is nothing else to do about it).
pub(crate) async fn handle(worker: &Worker, item: WorkItem) {
    let Event::RunFinished(finished) = &item.event else {
        return settle(&item).await;
    };
    if finished.status != RunStatus::Error {
        return settle(&item).await;
    }
    let run_id = finished.run_id;
    let Some(ended) = worker.view.read(|view| view.ended_jenkins(run_id).cloned()) else {
        return settle(&item).await;
    };
    let span = tracing::info_span!("clean_up", %run_id, position = item.position);
    async {
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
    .instrument(span)
    .await;
    settle(&item).await;
}
