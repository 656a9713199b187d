//! Reading the log for the read models: pages of decoded events ([`read_facts`]), and pages
//! read ahead of their consumer while it applies the last ones ([`read_ahead`]).

use crate::error::ProjectionError;
use crate::fold::Fact;
use chrono::{DateTime, Utc};
use runledger_store::PgPool;
use runledger_types::envelope::decode_text;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The columns of the log a fact needs.
#[derive(sqlx::FromRow)]
struct FactRow {
    position: i64,
    event_type: String,
    schema_version: i32,
    recorded_at: DateTime<Utc>,
    actor: String,
    data: String,
}

/// Up to `limit` events after position `after`, decoded, in position order (gap-safe: see
/// runledger-store). Reads only the columns read models use, and decodes `data` straight from
/// its text.
pub async fn read_facts(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<Fact>, ProjectionError> {
    decode(read_rows(pool, after, limit).await?)
}

async fn read_rows(pool: &PgPool, after: i64, limit: i64) -> Result<Vec<FactRow>, ProjectionError> {
    Ok(sqlx::query_as(
        "SELECT position, type AS event_type, schema_version, recorded_at, actor, data::text AS data \
         FROM events WHERE position > $1 ORDER BY position LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

fn decode(rows: Vec<FactRow>) -> Result<Vec<Fact>, ProjectionError> {
    rows.into_iter()
        .map(|row| {
            let event = decode_text(row.position, &row.event_type, row.schema_version, &row.data)?;
            Ok(Fact {
                position: row.position,
                recorded_at: row.recorded_at,
                actor: row.actor,
                event,
            })
        })
        .collect()
}

/// How far [`read_ahead`] reads.
#[derive(Debug, Clone, Copy)]
pub enum ReadUntil {
    /// Up to this position, then the pages end (a rebuild).
    Position(i64),
    /// For ever, looking again after this pause whenever the log has nothing new (the live
    /// projector).
    Follow(std::time::Duration),
}

/// A page being decoded on the blocking pool, or why it could not be read.
type Pending = Result<JoinHandle<Result<Vec<Fact>, ProjectionError>>, ProjectionError>;

/// Pages of up to `batch` events after `after`, read up to `depth` pages ahead of the consumer
/// on a connection of its own. Each page is decoded on the blocking pool while the next is
/// read, so Postgres reading, decoding and the consumer's writing overlap. The pages end after
/// an error (which they carry), at the end of [`ReadUntil::Position`], or when dropped.
pub fn read_ahead(
    pool: PgPool,
    after: i64,
    (batch, depth): (i64, usize),
    until: ReadUntil,
) -> Pages {
    let (sender, receiver) = mpsc::channel::<Pending>(depth.max(1));
    tokio::spawn(async move {
        let mut position = after;
        loop {
            let limit = match until {
                ReadUntil::Position(end) if position >= end => return,
                ReadUntil::Position(end) => batch.min(end - position),
                ReadUntil::Follow(_) => batch,
            };
            match read_rows(&pool, position, limit).await {
                Ok(rows) => match (rows.last().map(|row| row.position), until) {
                    (Some(last), _) => {
                        position = last;
                        let decoding = tokio::task::spawn_blocking(move || decode(rows));
                        if sender.send(Ok(decoding)).await.is_err() {
                            return;
                        }
                    }
                    (None, ReadUntil::Follow(pause)) if !sender.is_closed() => {
                        tokio::time::sleep(pause).await;
                    }
                    (None, _) => return,
                },
                Err(err) => {
                    let _ = sender.send(Err(err)).await;
                    return;
                }
            }
        }
    });
    Pages {
        receiver,
        decoding: None,
    }
}

/// The pages [`read_ahead`] reads, in order.
#[derive(Debug)]
pub struct Pages {
    receiver: mpsc::Receiver<Pending>,
    /// The page being awaited: kept here, so that a `recv` dropped while it waits (a
    /// `select!` that took another branch) loses nothing.
    decoding: Option<JoinHandle<Result<Vec<Fact>, ProjectionError>>>,
}

impl Pages {
    /// The next page; `None` once the pages end. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Vec<Fact>, ProjectionError>> {
        if self.decoding.is_none() {
            match self.receiver.recv().await? {
                Ok(decoding) => self.decoding = Some(decoding),
                Err(err) => return Some(Err(err)),
            }
        }
        let decoding = self.decoding.as_mut()?;
        let decoded = decoding.await;
        self.decoding = None;
        Some(decoded.unwrap_or_else(|join| {
            Err(ProjectionError::Corrupt(format!(
                "decoding a page of the log failed: {join}"
            )))
        }))
    }
}
