//! Store errors: a conflict is expected and retried; the rest are infrastructure failures.

/// What can go wrong talking to the event log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended first: the log head moved past what the caller decided on, or a
    /// stream version was taken. Reload and decide again.
    #[error("concurrent append: {0}")]
    Conflict(String),
    /// A command of the batch was recorded already (by another handler, or before a
    /// redelivery): look its outcome up instead of deciding it again.
    #[error("a command of the batch was already handled")]
    AlreadyHandled,
    /// A row in the log does not decode.
    #[error("corrupt log row: {0}")]
    Corrupt(String),
    /// A stored or outgoing JSON document does not (de)serialise.
    #[error("{what}: {source}")]
    Json {
        /// What was being read or written.
        what: String,
        /// The decoder's or encoder's error.
        source: serde_json::Error,
    },
    /// An event of the log is not one this runledger can read (newer, or malformed).
    #[error(transparent)]
    Undecodable(#[from] runledger_types::envelope::UpcastError),
    /// Postgres failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database has no migrations, and the connected role may not apply them.
    #[error(
        "the database is not migrated, and this role may not migrate it: run `runledger migrate` \
         as the database owner first"
    )]
    NotMigrated,
    /// Migrations this binary needs are not applied, and the connected role may not apply them.
    #[error(
        "the database lacks migrations {0:?}: run `runledger migrate` as the database owner \
         (this role is least-privilege and does not migrate)"
    )]
    MigrationsPending(Vec<i64>),
    /// The database carries migrations this binary does not know, or knows with other contents.
    #[error(
        "the database has migrations {0:?} that this runledger does not know (or knows with \
         other contents): it was migrated by another version; run the matching runledger"
    )]
    MigrationsUnknown(Vec<i64>),
    /// A role name or prefix that is not a plain lower-case SQL identifier.
    #[error(
        "invalid role name {0:?}: use lower-case letters, digits and `_`, starting with a letter"
    )]
    InvalidRoleName(String),
}

impl StoreError {
    /// True for errors a retry after reloading state can fix.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// True when a command id of the batch was recorded already.
    pub fn is_already_handled(&self) -> bool {
        matches!(self, Self::AlreadyHandled)
    }

    /// True when Postgres refused the data itself (not the connection): retrying the same batch
    /// cannot succeed, but the batch's commands may succeed one by one.
    pub fn is_data_error(&self) -> bool {
        matches!(
            self,
            Self::Corrupt(_)
                | Self::Json { .. }
                | Self::Undecodable(_)
                | Self::Database(sqlx::Error::Database(_))
        )
    }
}

/// Maps unique-constraint violations on the log to [`StoreError::Conflict`].
pub(crate) fn classify(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.code().as_deref() == Some("23505")
    {
        let constraint = db.constraint().unwrap_or("unique constraint");
        if constraint == "commands_pkey" {
            return StoreError::AlreadyHandled;
        }
        return StoreError::Conflict(format!("{constraint} violated"));
    }
    StoreError::Database(err)
}
