//! How fresh the read models are: each one's position against the log's head, and a bounded
//! wait until they include a given position (read-your-writes after a command's outcome).

use crate::error::ReadModelError;
use crate::model::{ALL, ReadModel};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The channel the projector notifies after each committed batch.
pub const PROJECTED_CHANNEL: &str = "runledger_projected";

/// Where one read model stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    /// The read model's name.
    pub name: &'static str,
    /// The last log position it includes (0 before the projector first ran).
    pub position: i64,
    /// `head - position`: events it has not applied yet.
    pub lag: i64,
    /// The table layout version it was built with, if built.
    pub version: Option<i32>,
    /// When it was last rebuilt from position 0.
    pub rebuilt_at: Option<DateTime<Utc>>,
    /// When it last committed a batch.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A row of `projection_checkpoints`.
#[derive(sqlx::FromRow)]
struct CheckpointRow {
    name: String,
    position: i64,
    version: i32,
    rebuilt_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The position of the log's last committed event.
pub async fn log_head(pool: &PgPool) -> Result<i64, ReadModelError> {
    Ok(sqlx::query_scalar("SELECT position FROM log_head")
        .fetch_one(pool)
        .await?)
}

/// The identity of the log (made with its schema): the NATS streams and events it publishes
/// carry it.
pub async fn log_id(pool: &PgPool) -> Result<runledger_types::LogId, ReadModelError> {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT log_id FROM log_identity")
        .fetch_one(pool)
        .await?;
    Ok(runledger_types::LogId(id))
}

/// Every read model's position and lag behind the log's head.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectionStatus>, ReadModelError> {
    let head = log_head(pool).await?;
    let rows: Vec<CheckpointRow> = sqlx::query_as(
        "SELECT name, position, version, rebuilt_at, updated_at FROM projection_checkpoints",
    )
    .fetch_all(pool)
    .await?;
    Ok(ALL
        .into_iter()
        .map(|model| {
            let row = rows.iter().find(|row| row.name == model.name());
            let position = row.map_or(0, |row| row.position);
            ProjectionStatus {
                name: model.name(),
                position,
                lag: head - position,
                version: row.map(|row| row.version),
                rebuilt_at: row.map(|row| row.rebuilt_at),
                updated_at: row.map(|row| row.updated_at),
            }
        })
        .collect())
}

/// The position every read model includes: the least of their checkpoints (0 while one of them
/// has never been built).
pub async fn projected_position(pool: &PgPool) -> Result<i64, ReadModelError> {
    let names: Vec<&str> = ALL.iter().map(|model| model.name()).collect();
    let (count, least): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), min(position) FROM projection_checkpoints WHERE name = ANY($1)",
    )
    .bind(&names)
    .fetch_one(pool)
    .await?;
    Ok(if count == names.len() as i64 {
        least.unwrap_or(0)
    } else {
        0
    })
}

/// Follows the read models' position (by LISTEN, with a slow poll as a safety net) so that many
/// readers can wait for freshness without a database round trip each.
#[derive(Debug, Clone)]
pub struct Freshness {
    position: watch::Receiver<i64>,
}

impl Freshness {
    /// Starts following; the follower stops with `shutdown`.
    pub async fn start(pool: PgPool, shutdown: CancellationToken) -> Result<Self, ReadModelError> {
        let (sender, position) = watch::channel(projected_position(&pool).await?);
        tokio::spawn(follow(pool, sender, shutdown));
        Ok(Self { position })
    }

    /// The position every read model includes, as last seen.
    pub fn position(&self) -> i64 {
        *self.position.borrow()
    }

    /// Waits until every read model includes `position`, for at most `timeout`.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> Result<i64, ReadModelError> {
        let mut receiver = self.position.clone();
        let reached = tokio::time::timeout(timeout, receiver.wait_for(|seen| *seen >= position));
        match reached.await {
            Ok(Ok(seen)) => Ok(*seen),
            _ => Err(ReadModelError::NotFresh {
                wanted: position,
                reached: self.position(),
            }),
        }
    }

    /// The model's own position, read now (for status pages that show each one).
    pub async fn model_position(pool: &PgPool, model: ReadModel) -> Result<i64, ReadModelError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(model.name())
                .fetch_optional(pool)
                .await?;
        Ok(position.unwrap_or(0))
    }
}

/// How often the follower reads the position even without a notification.
const POLL: Duration = Duration::from_secs(1);

async fn follow(pool: PgPool, sender: watch::Sender<i64>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match listen(&pool).await {
            Ok(listener) => Some(listener),
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN for projector progress; polling");
                None
            }
        };
        loop {
            let woke = async {
                match listener.as_mut() {
                    Some(listener) => listener.try_recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            let lost_listener = tokio::select! {
                () = shutdown.cancelled() => return,
                result = woke => result.is_err(),
                () = tokio::time::sleep(POLL) => false,
            };
            match projected_position(&pool).await {
                Ok(position) => {
                    sender.send_if_modified(|seen| {
                        let newer = position > *seen;
                        *seen = (*seen).max(position);
                        newer
                    });
                }
                Err(err) => tracing::warn!(error = %err, "reading the projector's position"),
            }
            if lost_listener || listener.is_none() {
                break;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(PROJECTED_CHANNEL).await?;
    Ok(listener)
}
