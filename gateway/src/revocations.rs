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
use runledger_readmodel::PgPool;
pub use runledger_readmodel::sessions::{REVOKED_CHANNEL, USER_SESSIONS_CHANNEL};
use runledger_readmodel::sessions::{Revocation, RevocationListener};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
        match RevocationListener::listen(pool).await {
            Ok(mut listener) => {
                // Anything revoked before this point was missed while not listening.
                tokens.clear();
                loop {
                    match listener.next().await {
                        Ok(Some(revocation)) => forget(tokens, revocation),
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

fn forget(tokens: &TokenCache, revocation: Revocation) {
    match revocation {
        Revocation::Token(token_hash) => tokens.forget(&token_hash),
        Revocation::User(username) => {
            tracing::info!(username, "a user's tokens were revoked; forgetting them");
            tokens.forget_user(&username);
        }
        Revocation::Unreadable(payload) => {
            tracing::warn!(
                payload,
                "a token revocation that names no token or user; forgetting every token"
            );
            tokens.clear();
        }
    }
}
