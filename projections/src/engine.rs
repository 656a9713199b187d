//! Applies batches of events to read models, each batch in one transaction together with the
//! checkpoints it advances.
//!
//! Correctness does not rest on there being one projector: a batch locks the checkpoint rows of
//! its read models first (`FOR UPDATE`), and when a checkpoint is not where this projector left
//! it (another projector or a rebuild moved it), the projector forgets its cached rows and
//! applies only the events after the stored position. So an update is never lost or doubled,
//! whoever crashes when.

use crate::binary_copy::{BulkRows, copy_binary};
use crate::error::ProjectionError;
use crate::fold::Fact;
use crate::fold::select::Fold;
use chrono::{DateTime, Utc};
use runledger_readmodel::{PROJECTED_CHANNEL, ReadModel};
use runledger_store::PgPool;
use sqlx::{Postgres, Transaction};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
        if !fold_into(tx, projection, facts).await? {
            continue;
        }
        projection.fold.flush(tx, &projection.schema).await?;
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

/// Folds the facts after `projection`'s position into its cached rows, loading what they touch
/// inside `tx`, without writing; false when none was after it.
async fn fold_into(
    tx: &mut Transaction<'_, Postgres>,
    projection: &mut Projection,
    facts: &[Fact],
) -> Result<bool, ProjectionError> {
    let stored = projection.position();
    let start = facts.partition_point(|fact| fact.position <= stored);
    let todo = &facts[start..];
    if todo.is_empty() {
        return Ok(false);
    }
    projection
        .fold
        .prepare(tx, &projection.schema, todo)
        .await?;
    for fact in todo {
        projection.fold.apply(fact);
    }
    Ok(true)
}

/// A rebuild's batch: pages of events folded one after another in one transaction, written
/// once at the end ([`Batch::write`]), so that reading the next pages overlaps folding these
/// and many small pages cost one write. Rows only ever inserted that a fold has ready early
/// (a history's full chunks) go to Postgres meanwhile, on a connection of their own, so that
/// Postgres takes them while the fold goes on. For private schemas only (no checkpoints).
pub struct Batch<'c> {
    tx: Transaction<'c, Postgres>,
    through: Option<i64>,
    events: usize,
    pool: PgPool,
    ahead: Option<WriteAhead>,
}

/// The connection writing a batch's early rows, fed through a bounded channel.
struct WriteAhead {
    rows: mpsc::Sender<(String, BulkRows)>,
    writer: JoinHandle<Result<(), ProjectionError>>,
}

/// Early rows queued for the writer: a bound on memory.
const AHEAD_QUEUE: usize = 4;

impl Batch<'_> {
    /// A batch in a new transaction.
    pub async fn begin(pool: &PgPool) -> Result<Self, ProjectionError> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        Ok(Self {
            tx,
            through: None,
            events: 0,
            pool: pool.clone(),
            ahead: None,
        })
    }

    /// Folds `facts` (ascending, after what the batch folded) into every projection, and hands
    /// the rows they have ready to the writer.
    pub async fn fold(
        &mut self,
        projections: &mut [Projection],
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        for projection in projections.iter_mut() {
            if fold_into(&mut self.tx, projection, facts).await? {
                self.hand_ahead(projection, false).await;
            }
        }
        if let Some(last) = facts.last() {
            self.through = Some(last.position);
        }
        self.events += facts.len();
        Ok(())
    }

    /// Events folded so far.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Hands the rows `projection` has ready (`all`: everything it can) to the writer.
    async fn hand_ahead(&mut self, projection: &mut Projection, all: bool) {
        for rows in projection.fold.take_ahead(all) {
            if rows.rows.is_empty() {
                continue;
            }
            let pool = &self.pool;
            let ahead = self.ahead.get_or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(AHEAD_QUEUE);
                WriteAhead {
                    rows: sender,
                    writer: tokio::spawn(write_ahead(pool.clone(), receiver)),
                }
            });
            if ahead
                .rows
                .send((projection.schema.clone(), rows))
                .await
                .is_err()
            {
                // The writer stopped: its error comes out of `write`.
                return;
            }
        }
    }

    /// Writes what the batch folded, waits for its early rows to be written, and commits; the
    /// projections then stand at its last event.
    pub async fn write(mut self, projections: &mut [Projection]) -> Result<(), ProjectionError> {
        // What can go to the writer does, so Postgres takes it on one connection while it
        // takes the rest on this one.
        for projection in projections.iter_mut() {
            self.hand_ahead(projection, true).await;
        }
        let ahead = self.ahead.take();
        let result = async {
            for projection in projections.iter_mut() {
                projection
                    .fold
                    .flush(&mut self.tx, &projection.schema)
                    .await?;
            }
            if let Some(WriteAhead { rows, writer }) = ahead {
                drop(rows);
                writer.await.map_err(|join| {
                    ProjectionError::Corrupt(format!("the rebuild's writer failed: {join}"))
                })??;
            }
            self.tx.commit().await.map_err(ProjectionError::from)
        }
        .await;
        if let Err(err) = result {
            forget(projections);
            return Err(err);
        }
        for projection in projections.iter_mut() {
            projection.fold.committed();
            if let Some(through) = self.through {
                projection.position = Some(projection.position().max(through));
            }
        }
        Ok(())
    }
}

/// Writes early rows as they come, each `COPY` committed on its own (a private schema: a
/// failed rebuild is dropped whole).
async fn write_ahead(
    pool: PgPool,
    mut rows: mpsc::Receiver<(String, BulkRows)>,
) -> Result<(), ProjectionError> {
    let mut connection = pool.acquire().await?;
    while let Some((schema, bulk)) = rows.recv().await {
        copy_binary(&mut connection, bulk.table, &schema, bulk.rows).await?;
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
