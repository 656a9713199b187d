//! Logins read users' credentials here: one row of `rm_accounts` per user, read once the read
//! models include the last event of the user's stream in the log, so that a login never sees an
//! account older than the last event committed for it (a changed password or a disabled user
//! counts from its event on, not from when a projector catches up). The hash itself stays in the
//! log: the row names the event that carries it, and that one event is read.

use crate::error::ReadModelError;
use crate::freshness::Freshness;
use crate::rows::AccountRow;
use runledger_store::EventStore;
use runledger_types::{Event, PasswordHash, Role, StreamId, StreamType};
use sqlx::PgPool;
use std::time::Duration;

/// What a login needs to know about one user.
#[derive(Debug, Clone)]
pub struct Account {
    /// `admin` or `member`.
    pub role: Role,
    /// The current argon2 hash.
    pub password_hash: PasswordHash,
    /// Disabled users may not log in.
    pub disabled: bool,
    /// The position of the user's last event: a token issued now is valid until a later
    /// `user_disabled`, `password_changed` or `tokens_revoked`.
    pub position: i64,
}

/// The account of `username` as the read model holds it now, if registered.
pub async fn account(pool: &PgPool, username: &str) -> Result<Option<Account>, ReadModelError> {
    let row: Option<AccountRow> =
        sqlx::query_as("SELECT * FROM rm_accounts.accounts WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Account {
        role: crate::decode::role(&row.role)?,
        password_hash: password_hash(pool, row.password_position).await?,
        disabled: row.disabled,
        position: row.position,
    }))
}

/// The hash carried by the `user_registered` or `password_changed` at `position`.
async fn password_hash(pool: &PgPool, position: i64) -> Result<PasswordHash, ReadModelError> {
    let records = EventStore::new(pool.clone())
        .read_after(position - 1, 1)
        .await?;
    let event = match records.first() {
        Some(record) if record.position == position => Some(record.decode()?),
        _ => None,
    };
    match event {
        Some(Event::UserRegistered(e)) => Ok(e.password_hash),
        Some(Event::PasswordChanged(e)) => Ok(e.password_hash),
        _ => Err(ReadModelError::NoPasswordAt { position }),
    }
}

/// The account of `username`, including every event of the user's stream committed before the
/// call: waits (at most `timeout`) until the read models include the stream's last event. A
/// user with no event in the log has no account, whether or not a projector has built the
/// read model yet.
pub async fn current_account(
    pool: &PgPool,
    freshness: &Freshness,
    username: &str,
    timeout: Duration,
) -> Result<Option<Account>, ReadModelError> {
    let stream = StreamId::new(StreamType::User, username);
    let head = EventStore::new(pool.clone())
        .stream_head(stream.as_str())
        .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    freshness.wait_for(head, timeout).await?;
    account(pool, username).await
}
