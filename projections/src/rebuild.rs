//! Rebuilding read models from position 0 into fresh schemas, then swapping them in atomically,
//! so queries keep answering from the old tables until the new ones are complete.

use crate::engine::{self, Batch, Checkpoints, Projection};
use crate::error::ProjectionError;
use crate::read::{ReadUntil, read_ahead, read_facts};
use futures::{StreamExt, TryStreamExt};
use runledger_readmodel::ReadModel;
use runledger_store::{EventStore, LeaderLock, Leadership, PgPool};
use sqlx::{Postgres, Transaction};
use std::time::{Duration, Instant};

/// Events folded per transaction during a rebuild. The tests fold's memory does not grow with
/// it: a full chunk leaves for the writer as soon as it fills.
const REBUILD_BATCH: i64 = 20_000;
/// Events read per page: small, so that reading the log overlaps folding it.
const READ_PAGE: i64 = 500;
/// Pages read ahead of the fold.
const READ_DEPTH: usize = 4;

/// How far a rebuild has come, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct RebuildProgress {
    /// Events applied so far.
    pub applied: i64,
    /// Events in the log when the rebuild started (it also applies later ones at the end).
    pub total: i64,
    /// Time since the rebuild started.
    pub elapsed: Duration,
}

/// What a finished rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// The read models rebuilt.
    pub models: Vec<ReadModel>,
    /// Events applied.
    pub events: i64,
    /// The position the rebuilt read models include.
    pub position: i64,
    /// Wall time, swap included.
    pub elapsed: Duration,
}

/// Rebuilds `models` from the whole log and swaps them in. Refuses (with
/// [`ProjectionError::RebuildBusy`]) when another process is rebuilding one of them.
#[tracing::instrument(skip_all, fields(component = "projector",
    models = ?models.iter().map(|m| m.name()).collect::<Vec<_>>()), err)]
pub async fn rebuild(
    pool: &PgPool,
    models: &[ReadModel],
    mut progress: impl FnMut(RebuildProgress),
) -> Result<RebuildReport, ProjectionError> {
    let started = Instant::now();
    let _locks = RebuildLocks::take(pool, models).await?;
    let mut projections = Vec::new();
    for &model in models {
        let schema = model.build_schema();
        prepare_schema(pool, model, &schema).await?;
        projections.push(Projection::new(model, schema, Some(0)));
    }
    let store = EventStore::new(pool.clone());
    let total = store.head().await?;
    let mut applied = 0;
    let mut pages = read_ahead(
        pool.clone(),
        0,
        (READ_PAGE, READ_DEPTH),
        ReadUntil::Position(total),
    );
    let mut batch: Option<Batch> = None;
    while let Some(page) = pages.recv().await {
        let facts = page?;
        let open = match batch.as_mut() {
            Some(open) => open,
            None => batch.insert(Batch::begin(pool).await?),
        };
        open.fold(&mut projections, &facts).await?;
        applied += facts.len() as i64;
        if open.events() as i64 >= REBUILD_BATCH {
            if let Some(full) = batch.take() {
                full.write(&mut projections).await?;
            }
            progress(RebuildProgress {
                applied,
                total,
                elapsed: started.elapsed(),
            });
        }
    }
    if let Some(last) = batch.take() {
        last.write(&mut projections).await?;
    }
    let mut position = total;
    // Catch up with what was appended meanwhile, outside the swap's locks first.
    loop {
        let facts = read_facts(pool, position, REBUILD_BATCH).await?;
        let Some(last) = facts.last().map(|fact| fact.position) else {
            break;
        };
        engine::apply_batch(pool, &mut projections, &facts, last, Checkpoints::InMemory).await?;
        applied += facts.len() as i64;
        position = last;
        if (facts.len() as i64) < REBUILD_BATCH {
            break;
        }
    }
    create_indexes(pool, &projections).await?;
    let (more, position) = swap(pool, &mut projections, position).await?;
    applied += more;
    progress(RebuildProgress {
        applied,
        total,
        elapsed: started.elapsed(),
    });
    Ok(RebuildReport {
        models: models.to_vec(),
        events: applied,
        position,
        elapsed: started.elapsed(),
    })
}

async fn prepare_schema(
    pool: &PgPool,
    model: ReadModel,
    schema: &str,
) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    for statement in model.create_sql(schema) {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Connections that build indexes side by side (one per core on a small machine).
const INDEX_BUILDERS: usize = 2;

/// Adds the deferred keys and the indexes of every built schema, then analyses its tables:
/// each table's statements in order, tables spread over [`INDEX_BUILDERS`] connections.
async fn create_indexes(pool: &PgPool, projections: &[Projection]) -> Result<(), ProjectionError> {
    let mut work: Vec<Vec<String>> = Vec::new();
    for projection in projections {
        let schema = &projection.schema;
        for table in projection.model.tables() {
            let mut statements = table.index_sql(schema);
            statements.push(table.analyze_sql(schema));
            work.push(statements);
        }
    }
    // Biggest first, so the long builds start early.
    work.sort_by_key(|statements| std::cmp::Reverse(statements.len()));
    futures::stream::iter(
        work.into_iter()
            .map(|statements| build_table(pool, statements)),
    )
    .buffer_unordered(INDEX_BUILDERS)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

async fn build_table(pool: &PgPool, statements: Vec<String>) -> Result<(), ProjectionError> {
    let mut connection = pool.acquire().await?;
    // Index builds sort in memory when they may (the default 64 MB spills to disk at a million
    // runs); reset before the connection goes back to the pool.
    sqlx::query("SET maintenance_work_mem = '256MB'")
        .execute(&mut *connection)
        .await?;
    for statement in statements {
        sqlx::query(&statement).execute(&mut *connection).await?;
    }
    sqlx::query("RESET maintenance_work_mem")
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// In one transaction: lock the checkpoints (live projectors wait), apply the last events,
/// rename the built schemas over the live ones, and record the new positions. Returns the
/// events applied and the position reached.
async fn swap(
    pool: &PgPool,
    projections: &mut [Projection],
    mut position: i64,
) -> Result<(i64, i64), ProjectionError> {
    let mut tx = pool.begin().await?;
    lock_checkpoints(&mut tx, projections).await?;
    let mut applied = 0;
    loop {
        let facts = read_facts(pool, position, REBUILD_BATCH).await?;
        let Some(last) = facts.last().map(|fact| fact.position) else {
            break;
        };
        engine::apply_in(&mut tx, projections, &facts, last, Checkpoints::InMemory).await?;
        applied += facts.len() as i64;
        position = last;
        // Whatever is appended after this read, the live projector applies after the commit.
        if (facts.len() as i64) < REBUILD_BATCH {
            break;
        }
    }
    for projection in projections.iter() {
        let live = projection.model.schema();
        let old = format!("{live}_old");
        let statements = [
            format!("DROP SCHEMA IF EXISTS {old} CASCADE"),
            format!("ALTER SCHEMA {live} RENAME TO {old}"),
        ];
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(&live)
                .fetch_one(&mut *tx)
                .await?;
        if exists {
            for statement in statements {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
        }
        sqlx::query(&format!(
            "ALTER SCHEMA {} RENAME TO {live}",
            projection.schema
        ))
        .execute(&mut *tx)
        .await?;
        if exists {
            sqlx::query(&format!("DROP SCHEMA {old} CASCADE"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE projection_checkpoints SET position = $2, version = $3, rebuilt_at = now(), updated_at = now() WHERE name = $1",
        )
        .bind(projection.model.name())
        .bind(position)
        .bind(projection.model.version())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(runledger_readmodel::PROJECTED_CHANNEL)
        .bind(position.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((applied, position))
}

async fn lock_checkpoints(
    tx: &mut Transaction<'_, Postgres>,
    projections: &[Projection],
) -> Result<(), ProjectionError> {
    for projection in projections {
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position, version) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(projection.model.name())
        .bind(projection.model.version())
        .execute(&mut **tx)
        .await?;
    }
    let names: Vec<&str> = projections.iter().map(|p| p.model.name()).collect();
    sqlx::query(
        "SELECT name FROM projection_checkpoints WHERE name = ANY($1) ORDER BY name FOR UPDATE",
    )
    .bind(&names)
    .fetch_all(&mut **tx)
    .await?;
    Ok(())
}

/// One session [`LeaderLock`] per read model being rebuilt, held until dropped.
struct RebuildLocks {
    /// Each ends its session, and frees its lock, when dropped.
    _held: Vec<Leadership>,
}

impl RebuildLocks {
    async fn take(pool: &PgPool, models: &[ReadModel]) -> Result<Self, ProjectionError> {
        let mut held = Vec::with_capacity(models.len());
        for model in models {
            let lock = LeaderLock::named(format!("runledger rebuild {}", model.name()));
            let Some(leadership) = lock.try_lead(pool).await? else {
                return Err(ProjectionError::RebuildBusy(model.name().to_owned()));
            };
            held.push(leadership);
        }
        Ok(Self { _held: held })
    }
}
