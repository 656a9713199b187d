//! Keeps the in-memory lab state equal to the log: folded at start-up, caught up before every
//! decision round so several handler processes see each other's events.

use runledger_domain::{Lab, evolve_compact};
use runledger_store::{EventStore, StoreError};

/// How many events one catch-up read takes.
const PAGE: i64 = 10_000;

/// Folds every event after `lab.position()` into `lab`.
pub(crate) async fn catch_up(store: &EventStore, lab: &mut Lab) -> Result<u64, StoreError> {
    let mut folded = 0;
    loop {
        let records = store.read_after(lab.position(), PAGE).await?;
        let Some(last) = records.last().map(|record| record.position) else {
            return Ok(folded);
        };
        for record in &records {
            let event = record.decode()?;
            evolve_compact(lab, &event);
        }
        folded += records.len() as u64;
        lab.set_position(last);
    }
}
