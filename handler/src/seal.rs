//! The sealer: extends the log's hash chain (`event_seals`) shortly after events commit, so that
//! `runledger audit verify` can prove no sealed event was altered, removed or reordered.
//!
//! Every handler process runs one; a transaction-scoped `LeaderLock` lets one seal at a time, and
//! the others find nothing left to do. A gap in the log (a removed event) is never sealed over:
//! the sealer logs it as an error and retries slowly until someone repairs or explains it.

use runledger_store::{EventStore, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events sealed per transaction.
const PAGE: i64 = 10_000;
/// How often the sealer looks for new events when it has caught up.
pub(crate) const INTERVAL: Duration = Duration::from_millis(200);
/// The longest wait after a database error.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The wait after finding the log corrupt: loud, slow retries.
const CORRUPT_RETRY: Duration = Duration::from_secs(60);

/// Seals the log until `shutdown`: again at once while it sealed a full page, else after
/// `interval`. Errors are logged and retried with a back-off; it never panics.
pub async fn run_sealer(store: EventStore, shutdown: CancellationToken, interval: Duration) {
    let mut sealed_through: Option<i64> = None;
    let mut backoff = interval;
    while !shutdown.is_cancelled() {
        let pause = match store.seal_pending(PAGE).await {
            Ok(through) => {
                backoff = interval;
                let full = sealed_through.is_none_or(|before| through - before >= PAGE);
                sealed_through = Some(through);
                if full { Duration::ZERO } else { interval }
            }
            Err(err) => {
                report(&err);
                backoff = next_backoff(&err, backoff);
                backoff
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

fn report(err: &StoreError) {
    match err {
        StoreError::Corrupt(reason) => tracing::error!(
            %reason,
            "THE EVENT LOG IS CORRUPT: sealing stopped; run `runledger audit verify`"
        ),
        err => tracing::warn!(error = %err, "sealing the event log failed; retrying"),
    }
}

fn next_backoff(err: &StoreError, current: Duration) -> Duration {
    match err {
        StoreError::Corrupt(_) => CORRUPT_RETRY,
        _ => (current * 2).clamp(Duration::from_millis(100), MAX_BACKOFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_a_limit_and_corruption_waits_long() {
        let db = StoreError::Conflict("x".into());
        assert_eq!(
            next_backoff(&db, Duration::from_millis(200)),
            Duration::from_millis(400)
        );
        assert_eq!(next_backoff(&db, MAX_BACKOFF), MAX_BACKOFF);
        let corrupt = StoreError::Corrupt("gap".into());
        assert_eq!(next_backoff(&corrupt, INTERVAL), CORRUPT_RETRY);
    }
}
