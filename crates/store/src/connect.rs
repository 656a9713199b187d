//! Connecting and migrating.

use crate::error::StoreError;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

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

/// Applies the event log's migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}
