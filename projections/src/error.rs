//! The projector's error type.

use runledger_readmodel::ReadModelError;
use runledger_store::StoreError;
use runledger_types::envelope::UpcastError;

/// Why projecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Postgres refused or could not be reached.
    #[error("projector database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A read-model query failed.
    #[error(transparent)]
    ReadModel(#[from] ReadModelError),
    /// An event in the log does not decode.
    #[error(transparent)]
    Decode(#[from] UpcastError),
    /// A read-model row does not have the expected shape.
    #[error("read model is corrupt: {0}")]
    Corrupt(String),
    /// Another process rebuilds the same read model right now.
    #[error("a rebuild of {0} is already running elsewhere")]
    RebuildBusy(String),
}
