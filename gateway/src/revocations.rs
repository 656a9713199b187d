//! Revoked tokens, across gateway processes: `DELETE /api/v1/tokens/current` notifies
//! [`REVOKED_CHANNEL`] with the token's hash in the same statement that marks it revoked, and
//! every gateway LISTENs and drops the token from its cache, so a token revoked through one
//! process stops working on all of them at once instead of after the cache's
//! [`TOKEN_CACHE_TTL`](crate::auth::TOKEN_CACHE_TTL).
//!
//! A notification can be missed only while the listening connection is down; each time it is
//! lost the whole cache is emptied (every token is then checked against Postgres again), and
//! while there is no listener the cache's time limit still bounds how long a revoked token lasts.
//!
//! A user's tokens end together too: a trigger on the log notifies [`USER_SESSIONS_CHANNEL`]
//! with the stream id `user-<username>` when a `user_disabled`, `password_changed` or
//! `tokens_revoked` event commits, whoever sent the command (a gateway, or the CLI over NATS),
//! and every gateway drops that user's cached tokens; the next check reads the log and refuses
//! them.

use crate::auth::TokenCache;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The Postgres channel a revocation is announced on; the payload is the token's SHA-256 in
/// base64.
pub const REVOKED_CHANNEL: &str = "runledger_token_revoked";

/// The Postgres channel the log's trigger announces a user's revoking events on; the payload is
/// the user's stream id.
pub const USER_SESSIONS_CHANNEL: &str = "runledger_user_sessions";

/// The wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// Spawns the follower; it stops with `shutdown`.
pub(crate) fn follow(pool: PgPool, tokens: Arc<TokenCache>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = keep_following(&pool, &tokens) => {}
        }
    });
}

async fn keep_following(pool: &PgPool, tokens: &TokenCache) {
    loop {
        match listen(pool).await {
            Ok(mut listener) => {
                // Anything revoked before this point was missed while not listening.
                tokens.clear();
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            if notification.channel() == USER_SESSIONS_CHANNEL {
                                forget_user(tokens, notification.payload());
                            } else {
                                forget(tokens, notification.payload());
                            }
                        }
                        Ok(None) => {
                            // The connection was lost and will be made again: start afresh.
                            tracing::warn!("lost the token revocation listener; reconnecting");
                            tokens.clear();
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "token revocation listener failed");
                            break;
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(
                error = %err,
                "cannot LISTEN for token revocations; a token revoked elsewhere lasts here until the cache forgets it"
            ),
        }
        tokens.clear();
        tokio::time::sleep(RETRY).await;
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([REVOKED_CHANNEL, USER_SESSIONS_CHANNEL])
        .await?;
    Ok(listener)
}

fn forget(tokens: &TokenCache, payload: &str) {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(payload) {
        Ok(token_hash) => tokens.forget(&token_hash),
        Err(_) => {
            tracing::warn!(
                payload,
                "a token revocation that is not a hash; forgetting every token"
            );
            tokens.clear();
        }
    }
}

fn forget_user(tokens: &TokenCache, stream_id: &str) {
    match stream_id.strip_prefix("user-") {
        Some(username) => {
            tracing::info!(username, "a user's tokens were revoked; forgetting them");
            tokens.forget_user(username);
        }
        None => tokens.clear(),
    }
}
