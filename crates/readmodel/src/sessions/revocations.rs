//! The notifications that end tokens: `DELETE /api/v1/tokens/current` notifies
//! [`REVOKED_CHANNEL`] with the token's hash in the statement that marks it revoked, and a
//! trigger on the log notifies [`USER_SESSIONS_CHANNEL`] with the stream id `user-<username>`
//! when a `user_disabled`, `password_changed` or `tokens_revoked` event commits.

use crate::error::ReadModelError;
use base64::Engine as _;
use sqlx::PgPool;
use sqlx::postgres::PgListener;

/// The Postgres channel a revocation is announced on; the payload is the token's SHA-256 in
/// base64.
pub const REVOKED_CHANNEL: &str = "runledger_token_revoked";

/// The Postgres channel the log's trigger announces a user's revoking events on; the payload is
/// the user's stream id.
pub const USER_SESSIONS_CHANNEL: &str = "runledger_user_sessions";

/// One notification, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token (its SHA-256) was revoked.
    Token(Vec<u8>),
    /// Every token of this user ended.
    User(String),
    /// A payload that names neither: the listener cannot tell which tokens ended.
    Unreadable(String),
}

/// Listens on both channels.
#[derive(Debug)]
pub struct RevocationListener(PgListener);

impl RevocationListener {
    /// Connects and listens. A listener holds one of the pool's connections until dropped.
    pub async fn listen(pool: &PgPool) -> Result<Self, ReadModelError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener
            .listen_all([REVOKED_CHANNEL, USER_SESSIONS_CHANNEL])
            .await?;
        Ok(Self(listener))
    }

    /// The next notification; `Ok(None)` when the connection was lost (it is made again on the
    /// next call, and anything sent meanwhile was missed).
    pub async fn next(&mut self) -> Result<Option<Revocation>, ReadModelError> {
        let Some(notification) = self.0.try_recv().await? else {
            return Ok(None);
        };
        let payload = notification.payload();
        Ok(Some(if notification.channel() == USER_SESSIONS_CHANNEL {
            match payload.strip_prefix("user-") {
                Some(username) => Revocation::User(username.to_owned()),
                None => Revocation::Unreadable(payload.to_owned()),
            }
        } else {
            match base64::engine::general_purpose::STANDARD.decode(payload) {
                Ok(token_hash) => Revocation::Token(token_hash),
                Err(_) => Revocation::Unreadable(payload.to_owned()),
            }
        }))
    }
}
