//! The projector component: follows the event log in global-position order and keeps the read
//! models of `runledger-readmodel` current, each batch in one transaction with its checkpoints;
//! rebuilds read models from position 0 into fresh schemas and swaps them in.
//!
//! Depends on runledger-types (events), runledger-store (reading the log) and
//! runledger-readmodel (tables); the folds in [`fold`] are synchronous and testable without a
//! database.
#![deny(missing_docs)]

mod binary_copy;
mod copy;
pub mod engine;
mod error;
pub mod fold;
pub mod read;
pub mod rebuild;
mod runner;
mod table;

pub use error::ProjectionError;
pub use rebuild::{RebuildProgress, RebuildReport, rebuild};
pub use runner::{ProjectorSettings, ProjectorStats, run};
