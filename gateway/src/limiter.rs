//! Failed logins, limited per username and client address and shared by every gateway process
//! through `gateway.login_attempts` (the statements and how the limits work:
//! [`runledger_readmodel::sessions`]); this module turns them into the login's answers and
//! deletes forgotten rows in the background.

use crate::error::ApiError;
use runledger_readmodel::PgPool;
use runledger_readmodel::sessions;
pub use runledger_readmodel::sessions::{LoginLimits, RETENTION};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often each gateway deletes forgotten rows.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Too many failures: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// Reserves one attempt of `username` from `client`; `Err` while it must wait.
#[tracing::instrument(skip_all, fields(username = %username, client = %client))]
pub async fn reserve(
    pool: &PgPool,
    limits: &LoginLimits,
    username: &str,
    client: &str,
) -> Result<(), Refused> {
    match sessions::reserve_attempt(pool, limits, username, client).await {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(Refused::Wait(RetryAfter(wait))),
        Err(err) => Err(Refused::Failed(ApiError::from(err))),
    }
}

/// Why an attempt may not go on.
#[derive(Debug)]
pub enum Refused {
    /// Too many failures.
    Wait(RetryAfter),
    /// The database failed.
    Failed(ApiError),
}

/// The attempt succeeded: forgets `username`'s failures from `client`.
pub async fn succeeded(pool: &PgPool, username: &str, client: &str) -> Result<(), ApiError> {
    Ok(sessions::attempt_succeeded(pool, username, client).await?)
}

/// Deletes the rows idle for longer than [`RETENTION`]; returns how many.
pub async fn prune(pool: &PgPool) -> Result<u64, runledger_readmodel::ReadModelError> {
    sessions::prune_attempts(pool).await
}
/// Prunes every [`PRUNE_EVERY`] until `shutdown`.
pub(crate) fn keep_pruning(pool: PgPool, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(err) = prune(&pool).await {
                tracing::warn!(error = %err, "cannot delete old failed logins");
            }
        }
    });
}
