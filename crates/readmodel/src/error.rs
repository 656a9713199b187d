//! The read models' error type.

/// Why a read-model query failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// Postgres refused or could not be reached.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The event log could not be read.
    #[error("reading the event log: {0}")]
    Log(#[from] runledger_store::StoreError),
    /// A stored row does not have the shape this version expects.
    #[error("read-model row is corrupt: {0}")]
    Corrupt(String),
    /// A column holds a word this version does not know.
    #[error("read-model column {column} holds an unknown value {value:?}")]
    UnknownValue {
        /// The column.
        column: &'static str,
        /// What it holds.
        value: String,
    },
    /// An event of the log could not be decoded.
    #[error("decoding an event of the log: {0}")]
    Event(#[from] runledger_types::envelope::UpcastError),
    /// An account names a log position that holds no password hash.
    #[error("the accounts read model names position {position}, which sets no password")]
    NoPasswordAt {
        /// The position named.
        position: i64,
    },
    /// The wait for freshness ran out.
    #[error("read models did not reach position {wanted} within the time allowed (at {reached})")]
    NotFresh {
        /// The position asked for.
        wanted: i64,
        /// The position reached.
        reached: i64,
    },
    /// A run-history request the caller got wrong.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// A tests request the caller got wrong.
    #[error(transparent)]
    Tests(#[from] crate::test_insights::TestsQueryError),
    /// A groups request the caller got wrong.
    #[error(transparent)]
    Groups(#[from] crate::groups::GroupsQueryError),
    /// No read model has this name.
    #[error(
        "no read model is called {0:?} (known: runs, venvs, machines, test_cases, users, accounts, tests, groups)"
    )]
    UnknownName(String),
}

impl ReadModelError {
    /// True when a read-model table does not exist (42P01): no projector has built it yet.
    pub fn is_missing_table(&self) -> bool {
        let database = match self {
            Self::Database(err) => Some(err),
            Self::Log(runledger_store::StoreError::Database(err)) => Some(err),
            _ => None,
        };
        database
            .and_then(|err| err.as_database_error())
            .and_then(|db| db.code())
            .is_some_and(|code| code == "42P01")
    }
}
