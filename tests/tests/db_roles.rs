//! The database enforces each component's role: after `runledger migrate` and the grants, the
//! gateway's, projector's and handler's roles each attempt what only another component (or the
//! owner) may do, and Postgres refuses; each role's own work succeeds; a service connected as a
//! least-privilege role checks the migrations instead of applying them; and one `runledger
//! serve` whose handler, projector and gateway each connect as their own role takes commands
//! end to end; the deployment files give each service its own role.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "db_roles/deploy.rs"]
mod deploy;
#[path = "db_roles/migrations.rs"]
mod migrations;
#[path = "db_roles/privileges.rs"]
mod privileges;
#[path = "db_roles/serve.rs"]
mod serve;

use sqlx::PgPool;

/// Runs `sql` and expects Postgres to refuse it for lack of privilege (SQLSTATE 42501).
pub async fn refused(pool: &PgPool, sql: &str) {
    match sqlx::query(sql).execute(pool).await {
        // A privilege check, not a trigger (whose error has the same code) nor anything else.
        Err(sqlx::Error::Database(db)) => assert!(
            db.code().as_deref() == Some("42501")
                && (db.message().starts_with("permission denied")
                    || db.message().starts_with("must be owner")),
            "{sql}: expected a permission error, got {db}"
        ),
        Err(other) => panic!("{sql}: expected a permission error, got {other}"),
        Ok(_) => panic!("{sql}: was allowed"),
    }
}

/// Runs `sql` and expects it to succeed.
pub async fn allowed(pool: &PgPool, sql: &str) {
    if let Err(err) = sqlx::query(sql).execute(pool).await {
        panic!("{sql}: refused: {err}");
    }
}
