//! The `venvs` read model: each venv's status and holder, and the queue of waiting runs.

use super::{Fact, keys_to_load};
use crate::error::ProjectionError;
use crate::table::{KeyedRow, RowCache};
use runledger_readmodel::rows::{QueueRow, VENVS_TABLES, VenvRow, VenvStatus};
use runledger_types::Event;
use runledger_types::event::{RunQueued, RunRequested, VenvAdded};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

impl KeyedRow for VenvRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.venv_id
    }
}

impl KeyedRow for QueueRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.run_id
    }
}

/// Folds venv events into venv rows, and run events into the queue.
#[derive(Debug)]
pub struct PoolFold {
    venvs: RowCache<VenvRow>,
    queue: RowCache<QueueRow>,
}

impl Default for PoolFold {
    fn default() -> Self {
        Self {
            venvs: RowCache::new(&VENVS_TABLES[0], 100_000),
            queue: RowCache::new(&VENVS_TABLES[1], 100_000),
        }
    }
}

impl PoolFold {
    /// Loads the venv and queue rows `facts` touch.
    pub async fn prepare(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        let venvs = keys_to_load(facts, |event| {
            venv_of(event).map(|venv_id| (venv_id, matches!(event, Event::VenvAdded(_))))
        });
        self.venvs.load(tx, schema, venvs).await?;
        let runs = keys_to_load(facts, |event| {
            queued_run_of(event).map(|run_id| (run_id, matches!(event, Event::RunRequested(_))))
        });
        self.queue.load(tx, schema, runs).await
    }

    /// Folds one event.
    pub fn apply(&mut self, fact: &Fact) {
        match &fact.event {
            Event::VenvAdded(e) => self.added(fact, e),
            Event::VenvProvisioned(e) => self.venv(fact, e.venv_id.0, |venv| {
                venv.status = VenvStatus::Free;
                venv.python_version.clone_from(&e.python_version);
                venv.failure_reason = None;
            }),
            Event::VenvProvisioningFailed(e) => self.venv(fact, e.venv_id.0, |venv| {
                venv.status = VenvStatus::Broken;
                venv.failure_reason = Some(e.reason.clone());
            }),
            Event::VenvLeased(e) => self.venv(fact, e.venv_id.0, |venv| {
                venv.status = VenvStatus::InUse;
                venv.run_id = Some(e.run_id.0);
                venv.leases += 1;
            }),
            Event::VenvReleased(e) => self.venv(fact, e.venv_id.0, |venv| {
                venv.status = VenvStatus::Free;
                venv.run_id = None;
            }),
            Event::VenvRemoved(e) => self.venv(fact, e.venv_id.0, |venv| {
                venv.status = VenvStatus::Removed;
                venv.run_id = None;
            }),
            Event::RunRequested(e) => self.requested(e),
            Event::RunQueued(e) => self.queued(fact, e),
            Event::RunAssigned(e) => {
                self.queue.update(&e.run_id.0, |row| {
                    row.ticket = None;
                    row.queued_at = None;
                    row.reason = None;
                });
            }
            Event::RunFinished(e) => self.queue.delete(e.run_id.0),
            _ => {}
        }
    }

    /// Writes the batch's changes.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        self.venvs.flush(tx, schema).await?;
        self.queue.flush(tx, schema).await?;
        Ok(())
    }

    /// After commit.
    pub fn committed(&mut self) {
        self.venvs.committed(|_| true);
        self.queue.committed(|_| true);
    }

    /// Forgets cached rows and unwritten changes.
    pub fn clear(&mut self) {
        self.venvs.clear();
        self.queue.clear();
    }

    /// The cached row of `venv_id` (for tests and inspection).
    pub fn venv_row(&self, venv_id: Uuid) -> Option<&VenvRow> {
        self.venvs.get(&venv_id)
    }

    /// The cached queue row of `run_id` (for tests and inspection).
    pub fn queue_row(&self, run_id: Uuid) -> Option<&QueueRow> {
        self.queue.get(&run_id)
    }

    fn added(&mut self, fact: &Fact, e: &VenvAdded) {
        self.venvs.create(VenvRow {
            venv_id: e.venv_id.0,
            machine_id: e.machine_id.0,
            name: e.name.as_str().to_owned(),
            path: e.path.as_str().to_owned(),
            python: e.python.as_str().to_owned(),
            requirements: e
                .requirements
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            status: VenvStatus::Provisioning,
            run_id: None,
            python_version: None,
            failure_reason: None,
            leases: 0,
            added_at: fact.recorded_at,
            updated_at: fact.recorded_at,
        });
    }

    fn venv(&mut self, fact: &Fact, venv_id: Uuid, change: impl FnOnce(&mut VenvRow)) {
        let found = self.venvs.update(&venv_id, |venv| {
            change(venv);
            venv.updated_at = fact.recorded_at;
        });
        if !found {
            tracing::warn!(%venv_id, position = fact.position, "event for a venv the read model does not know; skipped");
        }
    }

    fn requested(&mut self, e: &RunRequested) {
        self.queue.create(QueueRow {
            run_id: e.run_id.0,
            requested_by: e.user.as_str().to_owned(),
            test_case_id: e.test_case_id.0,
            machine_id: e.machine_id.map(|id| id.0),
            venv_id: e.venv_id.map(|id| id.0),
            labels: e
                .labels
                .iter()
                .map(|label| label.as_str().to_owned())
                .collect(),
            ticket: None,
            queued_at: None,
            reason: None,
        });
    }

    fn queued(&mut self, fact: &Fact, e: &RunQueued) {
        self.queue.update(&e.run_id.0, |row| {
            row.ticket = Some(fact.position);
            row.queued_at = Some(fact.recorded_at);
            row.reason = Some(e.reason.clone());
        });
    }
}

fn venv_of(event: &Event) -> Option<Uuid> {
    match event {
        Event::VenvAdded(e) => Some(e.venv_id.0),
        Event::VenvProvisioned(e) => Some(e.venv_id.0),
        Event::VenvProvisioningFailed(e) => Some(e.venv_id.0),
        Event::VenvLeased(e) => Some(e.venv_id.0),
        Event::VenvReleased(e) => Some(e.venv_id.0),
        Event::VenvRemoved(e) => Some(e.venv_id.0),
        _ => None,
    }
}

fn queued_run_of(event: &Event) -> Option<Uuid> {
    match event {
        Event::RunRequested(e) => Some(e.run_id.0),
        Event::RunQueued(e) => Some(e.run_id.0),
        Event::RunAssigned(e) => Some(e.run_id.0),
        Event::RunFinished(e) => Some(e.run_id.0),
        _ => None,
    }
}
