//! The read models: the tables the projector maintains from the event log, their rows, and the
//! queries other components (gateway, CLI) ask of them.
//!
//! Every read model lives in a Postgres schema of its own (`rm_runs`, `rm_venvs`, ...), so a
//! rebuild can fill a fresh schema while the live one keeps answering, then swap the two by
//! renaming schemas in one transaction. Rows are a pure function of the log: their times come
//! from the events' `recorded_at`.
//!
//! Every read the gateway and the CLI make goes through a typed function here: read-model
//! queries, the few reads of the log they need (through runledger-store), and the gateway's own
//! session tables.
//!
//! Depends on runledger-types, runledger-store and sqlx; knows nothing of NATS or of how rows
//! are computed (that is the projector's job, in `projections/`).
#![deny(missing_docs)]

pub mod accounts;
mod decode;
mod error;
mod freshness;
pub mod groups;
pub mod history;
pub mod junit;
mod keyset;
pub mod lab;
mod model;
mod output;
mod queue;
pub mod rerun;
pub mod rows;
pub mod runs;
pub mod sessions;
pub mod test_insights;

pub use error::ReadModelError;
pub use freshness::{
    Freshness, PROJECTED_CHANNEL, ProjectionStatus, log_head, log_id, projected_position, status,
};
pub use keyset::CursorError;
pub use model::{ALL, ReadModel, Table};
pub use output::{OutputChunk, OutputText, run_output};
pub use queue::{QueuedRun, queue};
/// The connection pool every query takes, so that callers need no sqlx of their own.
pub use sqlx::PgPool;
