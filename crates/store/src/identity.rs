//! The log's identity, and the one lookup the claim of a NATS stream needs.

use crate::{EventStore, StoreError};
use runledger_types::{EventId, LogId};
use uuid::Uuid;

impl EventStore {
    /// This log's identity, made when its schema was created (`log_identity`).
    pub async fn log_id(&self) -> Result<LogId, StoreError> {
        log_id(&self.pool).await
    }

    /// The id of the event at `position`, if the log has one there.
    pub async fn event_id_at(&self, position: i64) -> Result<Option<EventId>, StoreError> {
        let id: Option<Uuid> =
            sqlx::query_scalar("SELECT event_id FROM events WHERE position = $1")
                .bind(position)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.map(EventId))
    }
}

/// The identity of the log in the database behind `pool`.
pub async fn log_id(pool: &sqlx::PgPool) -> Result<LogId, StoreError> {
    let id: Uuid = sqlx::query_scalar("SELECT log_id FROM log_identity")
        .fetch_one(pool)
        .await?;
    Ok(LogId(id))
}
