//! One `venv_added` work item: provision the venv, then ack.

use super::Worker;
use crate::driver::drive_provisioning;
use crate::feed::WorkItem;
use crate::render::VenvSpec;
use crate::view::VenvStatus;
use runledger_types::command::ReportVenvProvisioningFailed;
use runledger_types::{Event, VenvId};
use tracing::Instrument;

/// Provisions the venv `item` names (unless it is no longer provisioning) and acks the item
/// once the outcome is reported. An item that cannot be reported is left unacked, to be
/// delivered again.
pub(crate) async fn handle(worker: &Worker, item: WorkItem) {
    let Event::VenvAdded(added) = &item.event else {
        tracing::warn!(position = item.position, "not a venv_added event; skipping");
        settle(&item).await;
        return;
    };
    let venv_id = added.venv_id;
    let correlation_id = item.meta.correlation_id.map(|id| id.to_string());
    let span = tracing::info_span!("provision", %venv_id, position = item.position, event_id = %item.meta.event_id, correlation_id = correlation_id.as_deref().unwrap_or("none"));
    provision(worker, &item, venv_id).instrument(span).await;
}

async fn provision(worker: &Worker, item: &WorkItem, venv_id: VenvId) {
    let resolved = match worker.view.read(|view| view.resolve_venv(venv_id)) {
        Ok(resolved) if resolved.venv.status == VenvStatus::Provisioning => resolved,
        Ok(_) | Err(_) => {
            tracing::info!("venv not provisioning any more; skipping");
            settle(item).await;
            return;
        }
    };
    let reporter = worker
        .reporter
        .caused_by(item.meta.event_id)
        .correlated(item.meta.correlation_id);
    let work = async {
        match worker.machines.connect(&resolved.machine, &reporter).await {
            Ok(transport) => {
                let spec = VenvSpec {
                    path: resolved.venv.path.as_str(),
                    python: resolved.venv.python.as_str(),
                    requirements: &resolved.venv.requirements,
                    upgrade_pip: false,
                };
                let os = resolved.machine.os;
                drive_provisioning(
                    &transport,
                    os,
                    venv_id,
                    spec,
                    worker.provisioning_timeout,
                    &reporter,
                )
                .await
                .map(|_| ())
                .map_err(|err| err.source.to_string())
            }
            Err(unreachable) => {
                tracing::warn!(reason = %unreachable.reason, "cannot provision");
                let report = ReportVenvProvisioningFailed {
                    venv_id,
                    reason: unreachable.reason.to_string(),
                    output_tail: String::new(),
                };
                match reporter.send(&report).await {
                    Ok(_) => Ok(()),
                    Err(err) => Err(err.to_string()),
                }
            }
        }
    };
    let done = tokio::select! {
        done = work => done,
        err = item.keep_alive(worker.keep_alive_every) => Err(err.to_string()),
    };
    match done {
        Ok(()) => settle(item).await,
        Err(err) => tracing::error!(error = %err, "provisioning not reported"),
    }
}

/// Acks an item, logging a failure (the item is then delivered again and skipped).
pub(crate) async fn settle(item: &WorkItem) {
    if let Err(err) = item.ack().await {
        tracing::warn!(position = item.position, error = %err, "cannot ack work");
    }
}
