//! Applies batches of events to read models, each batch in one transaction together with the
//! checkpoints it advances.
//!
//! Correctness does not rest on there being one projector: a batch locks the checkpoint rows of
//! its read models first (`FOR UPDATE`), and when a checkpoint is not where this projector left
//! it (another projector or a rebuild moved it), the projector forgets its cached rows and
//! applies only the events after the stored position. So an update is never lost or doubled,
//! whoever crashes when.

use crate::error::ProjectionError;
use crate::fold::Fact;
use crate::fold::select::Fold;
use chrono::{DateTime, Utc};
use runledger_readmodel::{PROJECTED_CHANNEL, ReadModel};
use runledger_store::PgPool;
use runledger_types::envelope::decode_text;
use sqlx::{Postgres, Transaction};

/// One read model being kept up to date.
#[derive(Debug)]
pub struct Projection {
    /// Which read model.
    pub model: ReadModel,
    /// The schema its rows are written to.
    pub schema: String,
    fold: Fold,
    /// The last position applied, as this projector believes; `None` until known.
    position: Option<i64>,
    /// When the schema written to was built: a rebuild swaps in other tables.
    built: Option<DateTime<Utc>>,
}

impl Projection {
    /// A projection of `model` into `schema`, starting from `position` (if known).
    pub fn new(model: ReadModel, schema: String, position: Option<i64>) -> Self {
        Self {
            model,
            schema,
            fold: Fold::new(model),
            position,
            built: None,
        }
    }

    /// From now on, collect the run timings the runs fold sees (the live projector only: a
    /// rebuild replays history that was observed already).
    pub fn collect_run_timings(&mut self) {
        if let Fold::Runs(fold) = &mut self.fold {
            fold.collect_timings();
        }
    }

    /// The run timings folded since the last call.
    pub fn take_run_timings(&mut self) -> Vec<crate::fold::runs::RunTiming> {
        self.fold.take_run_timings()
    }

    /// The last position applied (0 if unknown).
    pub fn position(&self) -> i64 {
        self.position.unwrap_or(0)
    }
}

/// Whether a batch reads and advances the checkpoint table (live read models) or only the
/// positions held in memory (a rebuild's private schemas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// Lock, compare and advance `projection_checkpoints`.
    Table,
    /// Private schemas: positions live in memory only.
    InMemory,
}

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
    let rows: Vec<FactRow> = sqlx::query_as(
        "SELECT position, type AS event_type, schema_version, recorded_at, actor, data::text AS data \
         FROM events WHERE position > $1 ORDER BY position LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
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
    /// Up to this position, then the channel closes (a rebuild).
    Position(i64),
    /// For ever, looking again after this pause whenever the log has nothing new (the live
    /// projector).
    Follow(std::time::Duration),
}

/// Decoded pages of up to `batch` events after `after`, read one page ahead of the consumer on
/// a connection of its own, so reading, decoding and writing overlap. The channel ends after an
/// error (which it carries), at the end of [`ReadUntil::Position`], or when the receiver goes.
pub fn read_ahead(
    pool: PgPool,
    after: i64,
    batch: i64,
    until: ReadUntil,
) -> tokio::sync::mpsc::Receiver<Result<Vec<Fact>, ProjectionError>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut position = after;
        loop {
            let limit = match until {
                ReadUntil::Position(end) if position >= end => return,
                ReadUntil::Position(end) => batch.min(end - position),
                ReadUntil::Follow(_) => batch,
            };
            match read_facts(&pool, position, limit).await {
                Ok(facts) => match (facts.last().map(|fact| fact.position), until) {
                    (Some(last), _) => {
                        position = last;
                        if sender.send(Ok(facts)).await.is_err() {
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
    receiver
}

/// Applies `facts` (contiguous, ascending, ending at `through`) to every projection in one
/// transaction, advancing their checkpoints to `through`.
#[tracing::instrument(level = "debug", skip_all, fields(component = "projector",
    from = facts.first().map(|fact| fact.position), through, events = facts.len()), err)]
pub async fn apply_batch(
    pool: &PgPool,
    projections: &mut [Projection],
    facts: &[Fact],
    through: i64,
    checkpoints: Checkpoints,
) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    // Safe without waiting for the flush to disk: the checkpoint commits with the rows, so a
    // Postgres crash loses both together and the projector applies those events again.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let result = apply_in(&mut tx, projections, facts, through, checkpoints).await;
    let result = match result {
        Ok(()) => tx.commit().await.map_err(ProjectionError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => {
            for projection in projections.iter_mut() {
                projection.fold.committed();
                projection.position = Some(projection.position().max(through));
            }
            Ok(())
        }
        Err(err) => {
            forget(projections);
            Err(err)
        }
    }
}

/// Forgets every cached row and believed position: the next batch starts from the database.
pub fn forget(projections: &mut [Projection]) {
    for projection in projections {
        projection.fold.clear();
        projection.position = None;
        projection.built = None;
    }
}

/// The body of [`apply_batch`], inside `tx` (also used by a rebuild's final swap).
pub async fn apply_in(
    tx: &mut Transaction<'_, Postgres>,
    projections: &mut [Projection],
    facts: &[Fact],
    through: i64,
    checkpoints: Checkpoints,
) -> Result<(), ProjectionError> {
    if checkpoints == Checkpoints::Table {
        sync_positions(tx, projections).await?;
    }
    for projection in projections.iter_mut() {
        let stored = projection.position();
        let start = facts.partition_point(|fact| fact.position <= stored);
        let todo = &facts[start..];
        if todo.is_empty() {
            continue;
        }
        let schema = projection.schema.as_str();
        projection.fold.prepare(tx, schema, todo).await?;
        for fact in todo {
            projection.fold.apply(fact);
        }
        projection.fold.flush(tx, schema).await?;
        if checkpoints == Checkpoints::Table {
            sqlx::query(
                "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
            )
            .bind(projection.model.name())
            .bind(through)
            .execute(&mut **tx)
            .await?;
        }
    }
    if checkpoints == Checkpoints::Table {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PROJECTED_CHANNEL)
            .bind(through.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Locks the projections' checkpoint rows and, where a stored position is not the one this
/// projector believes, starts that projection over from the stored one.
async fn sync_positions(
    tx: &mut Transaction<'_, Postgres>,
    projections: &mut [Projection],
) -> Result<(), ProjectionError> {
    let names: Vec<&str> = projections.iter().map(|p| p.model.name()).collect();
    let stored: Vec<(String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT name, position, rebuilt_at FROM projection_checkpoints WHERE name = ANY($1) ORDER BY name FOR UPDATE",
    )
    .bind(&names)
    .fetch_all(&mut **tx)
    .await?;
    for projection in projections.iter_mut() {
        let Some((_, position, built)) = stored
            .iter()
            .find(|(name, ..)| name == projection.model.name())
        else {
            return Err(ProjectionError::Corrupt(format!(
                "read model {} has no checkpoint row",
                projection.model
            )));
        };
        if projection.position != Some(*position) || projection.built != Some(*built) {
            projection.fold.clear();
            projection.fold.load_state(tx, &projection.schema).await?;
            projection.position = Some(*position);
            projection.built = Some(*built);
        }
    }
    Ok(())
}
