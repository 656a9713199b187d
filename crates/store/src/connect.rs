//! Connecting, migrating, and checking that a database is at this binary's migration.

use crate::error::StoreError;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

/// The event log's migrations, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connects to `url`, creating the database first when it does not exist yet.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    if !sqlx::Postgres::database_exists(url).await? {
        match sqlx::Postgres::create_database(url).await {
            Ok(()) => {}
            // Another process created it first.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {}
            Err(err) => return Err(err.into()),
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // A ping before every acquire costs a round trip per query; broken connections surface
        // as errors the callers already retry.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    Ok(pool)
}

/// Applies the event log's migrations (as the role that owns the log's tables).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// What [`prepare`] did at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// The connected role owns the schema, and applied whatever migrations were missing.
    Migrated,
    /// The connected role may not migrate; the database was found at this binary's migration.
    Checked,
}

/// Start-up for a service: the owner migrates, while a least-privilege role (which may not
/// create or alter tables) only checks that every migration this binary knows is applied,
/// unchanged, and that none it does not know is. A service that finds the database behind or
/// ahead refuses to start, naming the migrations, rather than failing later on a missing column.
pub async fn prepare(pool: &PgPool) -> Result<Prepared, StoreError> {
    if may_migrate(pool).await? {
        migrate(pool).await?;
        return Ok(Prepared::Migrated);
    }
    check(pool).await?;
    Ok(Prepared::Checked)
}

/// True when the connected role owns the migrations table, or may create it (a fresh database).
async fn may_migrate(pool: &PgPool) -> Result<bool, StoreError> {
    let owns: Option<bool> = sqlx::query_scalar(
        "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class \
         WHERE oid = to_regclass('_sqlx_migrations')",
    )
    .fetch_optional(pool)
    .await?;
    match owns {
        Some(owns) => Ok(owns),
        None => Ok(sqlx::query_scalar(
            "SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), false)",
        )
        .fetch_one(pool)
        .await?),
    }
}

/// Compares the applied migrations with the embedded ones.
async fn check(pool: &PgPool) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Err(StoreError::NotMigrated);
    }
    let applied: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(pool)
    .await?;
    let known: Vec<(i64, &[u8])> = MIGRATOR
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .map(|migration| (migration.version, migration.checksum.as_ref()))
        .collect();
    let missing: Vec<i64> = known
        .iter()
        .filter(|(version, _)| !applied.iter().any(|(v, _)| v == version))
        .map(|(version, _)| *version)
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::MigrationsPending(missing));
    }
    let unknown: Vec<i64> = applied
        .iter()
        .filter(|(version, checksum)| !known.contains(&(*version, checksum.as_slice())))
        .map(|(version, _)| *version)
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::MigrationsUnknown(unknown));
    }
    Ok(())
}
