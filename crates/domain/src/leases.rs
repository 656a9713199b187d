//! Executor leases: an executor holds the runs it started for as long as it keeps sending
//! heartbeats. The handler's lease watch reads [`holdings`] on a timer; when an executor's
//! heartbeat count has not moved for a whole lease it sends `expire_executor_lease` with that
//! count, and the decision ([`crate::decide`]) ends or retries the runs only if the count is
//! still current, so a heartbeat racing the expiry always wins.

use crate::state::Lab;
use runledger_types::{RunId, StreamId};
use std::collections::BTreeMap;

/// What one executor holds, and how many heartbeats it has sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// The executor's heartbeats in the log (the version of its `executor-<name>` stream).
    pub heartbeats: i64,
    /// The runs it is running, ascending id.
    pub run_ids: Vec<RunId>,
}

/// The executors that hold at least one running run, by name.
pub fn holdings(lab: &Lab) -> BTreeMap<String, Holding> {
    let mut held: BTreeMap<String, Holding> = BTreeMap::new();
    for (run_id, run) in lab.running_runs() {
        let Some(executor) = run.executor.as_deref() else {
            continue;
        };
        held.entry(executor.to_owned())
            .or_insert_with(|| Holding {
                heartbeats: heartbeats(lab, executor),
                run_ids: Vec::new(),
            })
            .run_ids
            .push(*run_id);
    }
    held
}

/// How many heartbeats `executor` has sent.
pub fn heartbeats(lab: &Lab, executor: &str) -> i64 {
    lab.stream_version(&StreamId::executor(executor))
}
