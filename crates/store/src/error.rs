//! Store errors: a conflict is expected and retried; the rest are infrastructure failures.

/// What can go wrong talking to the event log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended first: the log head moved past what the caller decided on, a
    /// stream version was taken, or a command id was recorded meanwhile. Reload and retry.
    #[error("concurrent append: {0}")]
    Conflict(String),
    /// A row in the log does not decode.
    #[error("corrupt log row: {0}")]
    Corrupt(String),
    /// Postgres failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True for errors a retry after reloading state can fix.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// True when Postgres refused the data itself (not the connection): retrying the same batch
    /// cannot succeed, but the batch's commands may succeed one by one.
    pub fn is_data_error(&self) -> bool {
        matches!(
            self,
            Self::Corrupt(_) | Self::Database(sqlx::Error::Database(_))
        )
    }
}

/// Maps unique-constraint violations on the log to [`StoreError::Conflict`].
pub(crate) fn classify(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.code().as_deref() == Some("23505")
    {
        let constraint = db.constraint().unwrap_or("unique constraint").to_owned();
        return StoreError::Conflict(format!("{constraint} violated"));
    }
    StoreError::Database(err)
}
