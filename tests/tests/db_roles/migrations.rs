//! A least-privilege role never migrates: it checks that the database is at this binary's
//! migration, and refuses to start, naming what is missing, when it is not.

use runledger_store::{Prepared, StoreError};
use runledger_test_support::{TestDb, TestRoles};

#[tokio::test]
async fn only_the_owner_migrates_and_the_others_check() {
    let db = TestDb::create().await;
    let roles = TestRoles::grant(&db).await;
    let gateway = roles.pool(&db, &roles.roles.gateway()).await;

    assert_eq!(
        runledger_store::prepare(&db.pool).await.unwrap(),
        Prepared::Migrated
    );
    assert_eq!(
        runledger_store::prepare(&gateway).await.unwrap(),
        Prepared::Checked
    );

    // The database falls behind this binary: its last migration is not recorded.
    let last: i64 = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(last)
        .execute(&db.pool)
        .await
        .unwrap();
    let behind = runledger_store::prepare(&gateway).await;
    assert!(
        matches!(&behind, Err(StoreError::MigrationsPending(missing)) if missing == &[last]),
        "{behind:?}"
    );
    let message = behind.err().unwrap().to_string();
    assert!(message.contains("runledger migrate"), "{message}");

    // Or ahead of it: a migration this binary knows with other contents.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from the future', true, '\\x00', 0)",
    )
    .bind(last)
    .execute(&db.pool)
    .await
    .unwrap();
    let ahead = runledger_store::prepare(&gateway).await;
    assert!(
        matches!(&ahead, Err(StoreError::MigrationsUnknown(unknown)) if unknown == &[last]),
        "{ahead:?}"
    );

    gateway.close().await;
    roles.cleanup(db).await;
}
