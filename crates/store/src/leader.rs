//! Leadership among processes of one component, by Postgres advisory lock.
//!
//! Several processes of a component may run (the outbox relay, the projector, the sealer); some
//! of their work must be done by one at a time. A [`LeaderLock`] names that work; its key is a
//! stable hash of the name, so every process of every version derives the same key.
//!
//! Two scopes:
//! - [`LeaderLock::try_lead`] takes a *session* lock on a connection of its own, detached from
//!   the pool: the process leads while that session lives, and a crash (the session ends) frees
//!   the lock for a follower at once. [`Leadership::check`] proves the session is still alive.
//! - [`LeaderLock::try_take_in`] takes a *transaction* lock, released at commit or rollback: for
//!   work done in one transaction (sealing a page of the log).

use crate::error::StoreError;
use sqlx::{Connection, PgConnection, PgPool};

/// A named advisory lock: one holder at a time across every process on the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderLock {
    name: String,
    key: i64,
}

impl LeaderLock {
    /// The lock called `name` (for example the events stream a relay publishes to).
    pub fn named(name: impl Into<String>) -> Self {
        let name = name.into();
        let key = fnv1a(&name);
        Self { name, key }
    }

    /// The lock's name, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The advisory-lock key: the 64-bit FNV-1a hash of the name.
    pub fn key(&self) -> i64 {
        self.key
    }

    /// Leads when no other session holds the lock: `None` while another process leads.
    pub async fn try_lead(&self, pool: &PgPool) -> Result<Option<Leadership>, StoreError> {
        let mut connection = pool.acquire().await?.detach();
        let won: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(self.key)
            .fetch_one(&mut connection)
            .await?;
        if !won {
            close(connection, &self.name).await;
            return Ok(None);
        }
        Ok(Some(Leadership {
            connection,
            lock: self.clone(),
        }))
    }

    /// Takes the lock for the rest of the transaction `tx` runs on, without waiting: `false`
    /// when another transaction holds it.
    pub async fn try_take_in(&self, tx: &mut PgConnection) -> Result<bool, StoreError> {
        let won = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(self.key)
            .fetch_one(tx)
            .await?;
        Ok(won)
    }
}

/// A held session lock: this process leads until it is dropped, released, or its session dies.
#[derive(Debug)]
pub struct Leadership {
    connection: PgConnection,
    lock: LeaderLock,
}

impl Leadership {
    /// The lock held.
    pub fn lock(&self) -> &LeaderLock {
        &self.lock
    }

    /// Fails when the session holding the lock is gone (Postgres restarted, the connection
    /// broke): the lock may then be held by another process, which must now lead alone.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        self.connection.ping().await?;
        Ok(())
    }

    /// Gives the lock up by ending its session.
    pub async fn release(self) {
        close(self.connection, &self.lock.name).await;
    }
}

async fn close(connection: PgConnection, name: &str) {
    if let Err(err) = connection.close().await {
        tracing::debug!(lock = name, error = %err, "closing a leader connection");
    }
}

/// The 64-bit FNV-1a hash of `text`, as Postgres' signed bigint.
fn fnv1a(text: &str) -> i64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_always_gives_the_same_key_and_names_differ() {
        assert_eq!(
            LeaderLock::named("RUNLEDGER_EVENTS").key(),
            LeaderLock::named("RUNLEDGER_EVENTS").key()
        );
        assert_ne!(
            LeaderLock::named("RUNLEDGER_EVENTS").key(),
            LeaderLock::named("T1_EVENTS").key()
        );
        // FNV-1a's published test vector for "a".
        assert_eq!(fnv1a("a") as u64, 0xaf63_dc4c_8601_ec8c);
    }
}
