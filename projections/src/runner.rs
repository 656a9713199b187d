//! The live projector: follows the log in position order and keeps every read model current.
//!
//! Several projector processes may run; one leads (the store's session [`LeaderLock`]) and the
//! others wait to take over when its session ends. The leader first builds any read model that
//! is missing or was built by an older layout version, then applies new events in batches.

use crate::engine::{self, Checkpoints, Projection};
use crate::error::ProjectionError;
use crate::fold::runs::RunTiming;
use crate::read::{ReadUntil, read_ahead};
use crate::rebuild;
use runledger_readmodel::{ALL, ReadModel};
use runledger_store::{LeaderLock, Leadership, PgPool, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The name of the lock projector leaders hold.
const LEADER_LOCK: &str = "runledger projector leader";

/// How the live projector paces itself.
#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    /// Most events applied in one transaction.
    pub batch: i64,
    /// How long to wait before looking again when the log has nothing new.
    pub idle_poll: Duration,
    /// How often a follower tries to become leader, and the leader checks it still is.
    pub leader_poll: Duration,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        Self {
            batch: 5_000,
            idle_poll: Duration::from_millis(20),
            leader_poll: Duration::from_secs(1),
        }
    }
}

/// What the projector has done, for tests, metrics and status pages.
#[derive(Debug, Default)]
pub struct ProjectorStats {
    /// True while this process leads.
    pub leader: AtomicBool,
    /// The position every read model includes, as last committed by this process.
    pub position: AtomicI64,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Events applied.
    pub events: AtomicU64,
}

/// Runs the projector until `shutdown`: waits to lead, then leads until shutdown or until it
/// loses its session (then it waits to lead again).
#[tracing::instrument(skip_all, fields(component = "projector"))]
pub async fn run(
    pool: PgPool,
    settings: ProjectorSettings,
    stats: Arc<ProjectorStats>,
    shutdown: CancellationToken,
) -> Result<(), ProjectionError> {
    loop {
        let Some(lock) = become_leader(&pool, &settings, &shutdown).await else {
            return Ok(());
        };
        stats.leader.store(true, Ordering::SeqCst);
        tracing::info!(
            component = "projector",
            "leading: this projector keeps the read models"
        );
        let result = lead(&pool, lock, &settings, &stats, &shutdown).await;
        stats.leader.store(false, Ordering::SeqCst);
        match result {
            Ok(()) => return Ok(()),
            Err(err) => {
                tracing::error!(component = "projector", error = %err, "projector stepped down; retrying");
                if sleep_or_shutdown(&shutdown, settings.leader_poll).await {
                    return Ok(());
                }
            }
        }
    }
}

/// Waits until this process holds the leader lock; `None` on shutdown.
async fn become_leader(
    pool: &PgPool,
    settings: &ProjectorSettings,
    shutdown: &CancellationToken,
) -> Option<Leadership> {
    let mut waiting_logged = false;
    loop {
        match try_lock(pool).await {
            Ok(Some(connection)) => return Some(connection),
            Ok(None) if !waiting_logged => {
                tracing::info!(
                    component = "projector",
                    "another projector leads; standing by"
                );
                waiting_logged = true;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(component = "projector", error = %err, "cannot reach Postgres")
            }
        }
        if sleep_or_shutdown(shutdown, settings.leader_poll).await {
            return None;
        }
    }
}

/// The leader lock, on a session of its own: it ends, and frees the lock, with this process.
async fn try_lock(pool: &PgPool) -> Result<Option<Leadership>, StoreError> {
    LeaderLock::named(LEADER_LOCK).try_lead(pool).await
}

async fn lead(
    pool: &PgPool,
    mut lock: Leadership,
    settings: &ProjectorSettings,
    stats: &ProjectorStats,
    shutdown: &CancellationToken,
) -> Result<(), ProjectionError> {
    build_missing(pool).await?;
    let mut projections: Vec<Projection> = ALL
        .into_iter()
        .map(|model| {
            let mut projection = Projection::new(model, model.schema(), None);
            projection.collect_run_timings();
            projection
        })
        .collect();
    let mut pages = read_ahead(
        pool.clone(),
        stored_minimum(pool).await?,
        (settings.batch, 2),
        ReadUntil::Follow(settings.idle_poll),
    );
    let mut lock_check = tokio::time::interval(settings.leader_poll);
    loop {
        let page = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = lock_check.tick() => {
                lock.check().await?;
                continue;
            }
            page = pages.recv() => page,
        };
        let facts = page.ok_or_else(|| {
            ProjectionError::Corrupt("the log reader stopped unexpectedly".to_owned())
        })??;
        let Some(through) = facts.last().map(|fact| fact.position) else {
            continue;
        };
        // On failure the caches are forgotten and the caller steps down; whoever leads next
        // starts again from the stored checkpoints.
        let started = std::time::Instant::now();
        engine::apply_batch(pool, &mut projections, &facts, through, Checkpoints::Table).await?;
        metrics::histogram!("runledger_projection_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("runledger_projected_events_total").increment(facts.len() as u64);
        for projection in &mut projections {
            record_run_timings(projection.take_run_timings());
        }
        let position = projections
            .iter()
            .map(Projection::position)
            .min()
            .unwrap_or(through);
        stats.position.store(position, Ordering::SeqCst);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .events
            .fetch_add(facts.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// `runledger_run_queue_wait_seconds` and `runledger_run_duration_seconds{status}`.
fn record_run_timings(timings: Vec<RunTiming>) {
    for timing in timings {
        match timing {
            RunTiming::QueueWait(seconds) => {
                metrics::histogram!("runledger_run_queue_wait_seconds").record(seconds);
            }
            RunTiming::Duration { status, seconds } => {
                metrics::histogram!("runledger_run_duration_seconds", "status" => status)
                    .record(seconds);
            }
        }
    }
}

/// The least position the read models' checkpoints hold.
async fn stored_minimum(pool: &PgPool) -> Result<i64, ProjectionError> {
    let names: Vec<&str> = ALL.iter().map(|model| model.name()).collect();
    let least: Option<i64> =
        sqlx::query_scalar("SELECT min(position) FROM projection_checkpoints WHERE name = ANY($1)")
            .bind(&names)
            .fetch_one(pool)
            .await?;
    Ok(least.unwrap_or(0))
}

/// Builds every read model that has no checkpoint, no schema, or an older layout version.
async fn build_missing(pool: &PgPool) -> Result<(), ProjectionError> {
    let mut missing = Vec::new();
    for model in ALL {
        if needs_build(pool, model).await? {
            missing.push(model);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|model| model.name()).collect();
    tracing::info!(component = "projector", models = ?names, "building read models from the log");
    let report = rebuild::rebuild(pool, &missing, |_| {}).await?;
    tracing::info!(
        component = "projector",
        events = report.events,
        position = report.position,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "read models built"
    );
    Ok(())
}

async fn needs_build(pool: &PgPool, model: ReadModel) -> Result<bool, ProjectionError> {
    let version: Option<i32> =
        sqlx::query_scalar("SELECT version FROM projection_checkpoints WHERE name = $1")
            .bind(model.name())
            .fetch_optional(pool)
            .await?;
    let schema_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(model.schema())
            .fetch_one(pool)
            .await?;
    match version {
        Some(version) if version > model.version() => Err(ProjectionError::Corrupt(format!(
            "read model {model} was built by a newer runledger (layout {version}, this one knows {})",
            model.version()
        ))),
        Some(version) => Ok(version < model.version() || !schema_exists),
        None => Ok(true),
    }
}

/// Sleeps for `duration`; true when shutdown came first.
async fn sleep_or_shutdown(shutdown: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
