//! `gateway.tokens`: bearer tokens, stored only as their SHA-256, with an expiry and the
//! position of the user's last event when they were issued.

use super::revocations::REVOKED_CHANNEL;
use crate::error::ReadModelError;
use chrono::{DateTime, Utc};
use runledger_types::Role;
use sqlx::PgPool;

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// The token's SHA-256.
    pub token_hash: &'a [u8],
    /// Whose it is.
    pub username: &'a str,
    /// Their role at login.
    pub role: Role,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The position of the user's last event the login saw.
    pub user_position: i64,
}

/// Stores a newly issued token.
pub async fn insert_token(pool: &PgPool, token: &NewToken<'_>) -> Result<(), ReadModelError> {
    sqlx::query(
        "INSERT INTO gateway.tokens (token_hash, username, role, expires_at, user_position) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.token_hash)
    .bind(token.username)
    .bind(crate::decode::role_name(token.role))
    .bind(token.expires_at)
    .bind(token.user_position)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a token revoked and, in the same statement, notifies [`REVOKED_CHANNEL`] with its hash,
/// so the notification reaches every gateway process when the revocation commits.
pub async fn revoke_token(pool: &PgPool, token_hash: &[u8]) -> Result<(), ReadModelError> {
    sqlx::query(
        "WITH revoked AS (UPDATE gateway.tokens SET revoked_at = now() WHERE token_hash = $1 \
         RETURNING token_hash) SELECT pg_notify($2, encode(token_hash, 'base64')) FROM revoked",
    )
    .bind(token_hash)
    .bind(REVOKED_CHANNEL)
    .execute(pool)
    .await?;
    Ok(())
}

/// A token that may be used now: whose it is, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    /// The user.
    pub username: String,
    /// Their role at login.
    pub role: Role,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A token that exists, has not expired, was not revoked, and whose user's stream in the log
/// has no revoking event after the position its login saw. The log, not the `accounts` read
/// model, is asked: a disabled user's tokens end with the event's commit, before any projector
/// has folded it.
const VALID_TOKEN: &str = "\
    SELECT t.username, t.role, t.expires_at FROM gateway.tokens t \
    WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() \
      AND NOT EXISTS (SELECT 1 FROM events e \
          WHERE e.stream_id = 'user-' || t.username AND e.type = ANY($2) \
            AND e.position > t.user_position)";

/// The token whose SHA-256 is `token_hash`, if it may be used now.
pub async fn valid_token(
    pool: &PgPool,
    token_hash: &[u8],
) -> Result<Option<ValidToken>, ReadModelError> {
    let found: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(VALID_TOKEN)
        .bind(token_hash)
        .bind(runledger_types::event::TOKEN_REVOKING_EVENTS)
        .fetch_optional(pool)
        .await?;
    found
        .map(|(username, role, expires_at)| {
            Ok(ValidToken {
                username,
                role: crate::decode::role(&role)?,
                expires_at,
            })
        })
        .transpose()
}
