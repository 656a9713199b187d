//! The Postgres event log: append (with optimistic concurrency and command idempotency), read in
//! gap-safe global order, seal and verify its hash chain (tamper evidence), and the migrations
//! that create it.
//!
//! Only this crate (and the read-model crates) know sqlx. It depends on runledger-types for the
//! shapes it stores.
//!
//! ## How order and gap safety work
//! Every append first takes the row lock of the one-row `log_head` table
//! (`UPDATE log_head SET position = position + n`) and holds it until commit. Appends therefore
//! commit one after another, each taking the next contiguous block of positions: the set of
//! visible positions is always a prefix `1..=head`, so a reader that follows `position > last`
//! can never miss an event that commits later with a lower number. Throughput comes from group
//! commit: the handler appends many commands in one transaction.
#![deny(missing_docs)]

mod append;
mod audit;
mod connect;
mod error;
mod identity;
mod leader;
mod read;
pub mod roles;
mod scram;
mod seal;
mod verify;

pub use append::{AppendBatch, Appended, CommandRecord};
pub use audit::AuditFilter;
pub use connect::{Prepared, connect, migrate, prepare};
pub use error::StoreError;
pub use identity::log_id;
pub use leader::{LeaderLock, Leadership};
pub use seal::{ChainHash, GENESIS, chain_hash};
pub use sqlx::PgPool;
pub use verify::{Problem, VerifyReport};

/// The event log over one Postgres database.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
}

impl EventStore {
    /// Wraps a pool whose database has been migrated.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for components that share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
