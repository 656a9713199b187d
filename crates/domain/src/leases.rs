//! Executor leases: an executor holds the runs it started for as long as it keeps beating.
//! Beats are liveness, not history: executors write them to a NATS key-value bucket, never to
//! the log. The handler's lease watch reads [`holdings`] on a timer and, for each executor
//! holding runs, the revision of its last beat; when that revision has not moved for a whole
//! lease it sends `expire_executor_lease`, and the decision ([`crate::decide`]) ends or retries
//! the runs. Only that decision and what follows from it reach the log.

use crate::state::Lab;
use runledger_types::RunId;
use std::collections::BTreeMap;

/// The executors that hold at least one running run, by name, with those runs ascending.
pub fn holdings(lab: &Lab) -> BTreeMap<String, Vec<RunId>> {
    let mut held: BTreeMap<String, Vec<RunId>> = BTreeMap::new();
    for (run_id, run) in lab.running_runs() {
        let Some(executor) = run.executor.as_deref() else {
            continue;
        };
        held.entry(executor.to_owned()).or_default().push(*run_id);
    }
    held
}
