//! Time travel: the lab as it stood right after a past position, or at a past time. The log is
//! folded from position 1 with the domain's own [`evolve`], which keeps every run (the handler's
//! compact fold forgets finished ones), so any run, venv or pool can be shown as it was.

use crate::{AsOf, AuditError, PAGE};
use chrono::{DateTime, Utc};
use runledger_domain::{Lab, evolve};
use runledger_store::EventStore;
use runledger_types::RawEventRecord;

/// A point in the log's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The head of the log: the lab as it is now.
    Head,
    /// Right after this position (the head, if the log is shorter).
    Position(i64),
    /// Right after the last event recorded at or before this time.
    Time(DateTime<Utc>),
}

/// The lab as it stood at a point, and which event that point is.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The state folded from every event up to [`Self::as_of`].
    pub lab: Lab,
    /// The last event folded.
    pub as_of: AsOf,
}

impl Snapshot {
    /// The state before the first event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds the next event of the log into the snapshot. Records must come in log order.
    pub fn apply(&mut self, record: &RawEventRecord) -> Result<(), AuditError> {
        evolve(&mut self.lab, &record.decode()?);
        self.lab.set_position(record.position);
        self.as_of = AsOf {
            position: record.position,
            recorded_at: Some(record.recorded_at),
        };
        Ok(())
    }
}

/// The lab at `point`: the log folded from position 1 through the position `point` names.
pub async fn lab_at(store: &EventStore, point: Point) -> Result<Snapshot, AuditError> {
    let through = match point {
        Point::Head => store.head().await?,
        Point::Position(position) => position,
        Point::Time(time) => store.position_at(time).await?,
    };
    fold_through(store, through).await
}

/// The log folded from position 1 through `through` (or the head, if that is smaller). Reads
/// raw pages: each event's data is decoded once, straight from its text.
async fn fold_through(store: &EventStore, through: i64) -> Result<Snapshot, AuditError> {
    let mut snapshot = Snapshot::new();
    while snapshot.as_of.position < through {
        let page = store.read_after_raw(snapshot.as_of.position, PAGE).await?;
        let done = page.len() < PAGE as usize
            || page.last().is_some_and(|record| record.position >= through);
        for record in page.iter().take_while(|record| record.position <= through) {
            snapshot.apply(record)?;
        }
        if done {
            break;
        }
    }
    Ok(snapshot)
}
