//! The read models' error type.

/// Why a read-model query failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// Postgres refused or could not be reached.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not have the shape this version expects.
    #[error("read-model row is corrupt: {0}")]
    Corrupt(String),
    /// The wait for freshness ran out.
    #[error("read models did not reach position {wanted} within the time allowed (at {reached})")]
    NotFresh {
        /// The position asked for.
        wanted: i64,
        /// The position reached.
        reached: i64,
    },
    /// No read model has this name.
    #[error("no read model is called {0:?} (known: runs, venvs, machines, test_cases, users)")]
    UnknownName(String),
}
