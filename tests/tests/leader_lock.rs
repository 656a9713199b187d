//! The store's leader lock: one holder at a time, freed when the holder's session ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_store::LeaderLock;
use runledger_test_support::TestDb;

#[tokio::test]
async fn one_process_leads_until_it_releases_or_its_session_ends() {
    let db = TestDb::create().await;
    let lock = LeaderLock::named("runledger test leader");
    let first = lock.try_lead(&db.pool).await.unwrap().expect("first leads");
    assert!(
        lock.try_lead(&db.pool).await.unwrap().is_none(),
        "second waits"
    );
    let other = LeaderLock::named("another component");
    let unrelated = other.try_lead(&db.pool).await.unwrap();
    assert!(unrelated.is_some(), "locks of other names are independent");
    first.release().await;
    let mut second = lock
        .try_lead(&db.pool)
        .await
        .unwrap()
        .expect("second leads now");
    second.check().await.unwrap();

    // The holder's session ends (as when its process dies): the lock is free at once.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND objid = ($1::bigint & 4294967295)::oid",
    )
    .bind(lock.key())
    .execute(&db.pool)
    .await
    .unwrap();
    assert!(
        second.check().await.is_err(),
        "the leader notices it lost its session"
    );
    assert!(lock.try_lead(&db.pool).await.unwrap().is_some());
    db.cleanup().await;
}

#[tokio::test]
async fn a_transaction_lock_has_one_holder_and_ends_with_its_transaction() {
    let db = TestDb::create().await;
    let lock = LeaderLock::named("runledger test sealer");
    let mut first = db.pool.begin().await.unwrap();
    assert!(lock.try_take_in(&mut first).await.unwrap());
    let mut second = db.pool.begin().await.unwrap();
    assert!(!lock.try_take_in(&mut second).await.unwrap());
    first.commit().await.unwrap();
    assert!(lock.try_take_in(&mut second).await.unwrap());
    second.rollback().await.unwrap();
    db.cleanup().await;
}
