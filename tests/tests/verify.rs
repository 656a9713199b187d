//! Tamper evidence: the sealer chains every event, and `verify` names the first position a
//! superuser changed, removed or moved behind the log's back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{batch_of, heartbeat, setup};
use runledger_store::{EventStore, Problem, StoreError, VerifyReport};
use runledger_test_support::{TestDb, TestLab, eventually};
use runledger_types::NewEvent;
use std::time::Duration;

/// Appends the heartbeats of `writer` with versions `versions`, in one transaction.
async fn append(store: &EventStore, writer: &str, versions: std::ops::RangeInclusive<i64>) {
    let events: Vec<NewEvent> = versions.map(|v| heartbeat(writer, v)).collect();
    let batch = batch_of(events, None);
    store.append(&batch).await.unwrap();
}

/// A log of `n` heartbeats of one stream, all sealed.
async fn sealed_log(n: i64) -> (TestDb, EventStore) {
    let db = TestDb::create().await;
    let store = EventStore::new(db.pool.clone());
    append(&store, "a", 1..=n).await;
    assert_eq!(store.seal_pending(1000).await.unwrap(), n);
    (db, store)
}

/// Runs `statements` as a superuser with the append-only triggers switched off.
async fn tamper(db: &TestDb, statements: &[&'static str]) {
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn problem(report: &VerifyReport) -> (i64, Problem) {
    report.first_problem.expect("verify should find a problem")
}

#[tokio::test]
async fn a_clean_log_verifies_and_a_lagging_sealer_is_not_a_problem() {
    let (db, store) = sealed_log(5).await;
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        (report.checked, report.sealed_through, report.head),
        (5, 5, 5)
    );
    assert_eq!(report.sealed_hash, store.last_seal().await.unwrap().1);
    assert!(report.to_string().contains(&report.sealed_hash_hex()));

    append(&store, "b", 1..=4).await;
    assert_eq!(store.seal_pending(2).await.unwrap(), 7);
    let lagging = store.verify().await.unwrap();
    assert!(lagging.is_intact(), "{lagging}");
    assert_eq!((lagging.checked, lagging.sealed_through), (9, 7));
    assert_eq!((lagging.unsealed, lagging.head), (2, 9));

    assert_eq!(store.seal_pending(1000).await.unwrap(), 9);
    assert_eq!(store.seal_pending(1000).await.unwrap(), 9, "nothing left");
    assert!(store.verify().await.unwrap().is_intact());
    db.cleanup().await;
}

#[tokio::test]
async fn the_seals_are_append_only() {
    let (db, _store) = sealed_log(1).await;
    for sql in [
        "UPDATE event_seals SET chain_hash = chain_hash",
        "DELETE FROM event_seals",
        "TRUNCATE event_seals",
    ] {
        let err = sqlx::query(sql).execute(&db.pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    db.cleanup().await;
}

#[tokio::test]
async fn data_changed_by_a_superuser_is_reported_altered_at_its_position() {
    let (db, store) = sealed_log(5).await;
    tamper(
        &db,
        &[r#"UPDATE events SET data = '{"executor": "mallory", "run_ids": []}' WHERE position = 3"#],
    )
    .await;
    let report = store.verify().await.unwrap();
    assert_eq!(problem(&report), (3, Problem::Altered), "{report}");
    assert_eq!(report.checked, 2);
    assert!(
        report.to_string().contains("TAMPERED at position 3"),
        "{report}"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn an_altered_seal_is_caught_too() {
    let (db, store) = sealed_log(4).await;
    tamper(
        &db,
        &["UPDATE event_seals SET chain_hash = sha256(chain_hash) WHERE position = 2"],
    )
    .await;
    assert_eq!(
        problem(&store.verify().await.unwrap()),
        (2, Problem::Altered)
    );
    db.cleanup().await;
}

#[tokio::test]
async fn a_deleted_event_is_missing_sealed_or_not_and_the_sealer_refuses_the_gap() {
    let (db, store) = sealed_log(5).await;
    append(&store, "b", 1..=3).await;
    tamper(&db, &["DELETE FROM events WHERE position IN (3, 7)"]).await;
    assert_eq!(
        problem(&store.verify().await.unwrap()),
        (3, Problem::Missing)
    );
    assert_eq!(store.seal_pending(1000).await.unwrap(), 6, "up to the gap");
    let err = store.seal_pending(1000).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(reason) if reason.contains("position 7")),
        "{err}"
    );
    assert_eq!(store.last_seal().await.unwrap().0, 6, "never over the gap");
    db.cleanup().await;
}

#[tokio::test]
async fn a_deleted_last_event_is_missing() {
    let (db, store) = sealed_log(4).await;
    tamper(&db, &["DELETE FROM events WHERE position = 4"]).await;
    assert_eq!(
        problem(&store.verify().await.unwrap()),
        (4, Problem::Missing)
    );
    db.cleanup().await;
}

#[tokio::test]
async fn a_deleted_seal_is_reported() {
    let (db, store) = sealed_log(4).await;
    tamper(&db, &["DELETE FROM event_seals WHERE position = 2"]).await;
    assert_eq!(
        problem(&store.verify().await.unwrap()),
        (2, Problem::SealMissing)
    );
    db.cleanup().await;
}

const SWAP_2_AND_4: [&str; 3] = [
    "UPDATE events SET position = -2 WHERE position = 2",
    "UPDATE events SET position = 2 WHERE position = 4",
    "UPDATE events SET position = 4 WHERE position = -2",
];

#[tokio::test]
async fn swapped_events_of_one_stream_are_reported_reordered_at_the_lower_position() {
    let (db, store) = sealed_log(5).await;
    tamper(&db, &SWAP_2_AND_4).await;
    assert_eq!(
        problem(&store.verify().await.unwrap()),
        (2, Problem::Reordered)
    );
    db.cleanup().await;
}

#[tokio::test]
async fn swapped_events_of_two_streams_are_caught_at_the_lower_position() {
    let db = TestDb::create().await;
    let store = EventStore::new(db.pool.clone());
    for writer in ["a", "b", "c", "d", "e"] {
        append(&store, writer, 1..=1).await;
    }
    store.seal_pending(1000).await.unwrap();
    tamper(&db, &SWAP_2_AND_4).await;
    assert_eq!(
        problem(&store.verify().await.unwrap()),
        (2, Problem::Altered)
    );
    db.cleanup().await;
}

#[tokio::test]
async fn a_lowered_head_is_reported() {
    let (db, store) = sealed_log(3).await;
    tamper(&db, &["UPDATE log_head SET position = 2"]).await;
    assert_eq!(
        problem(&store.verify().await.unwrap()),
        (3, Problem::BeyondHead)
    );
    db.cleanup().await;
}

#[tokio::test]
async fn the_handler_seals_events_of_real_commands() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    setup(&client, 1).await;
    let head = lab.store.head().await.unwrap();
    assert!(head >= 5, "the set-up appended events");
    eventually(
        Duration::from_secs(10),
        "the seals reach the head",
        || async {
            let (sealed, _) = lab.store.last_seal().await.unwrap();
            (sealed == head).then_some(())
        },
    )
    .await;
    let report = lab.store.verify().await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.sealed_through, report.unsealed), (head, 0));
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn a_gap_stops_the_sealer_but_not_the_handler() {
    let lab = TestLab::create().await;
    append(&lab.store, "a", 1..=3).await;
    tamper(&lab.db, &["DELETE FROM events WHERE position = 2"]).await;
    let handler = lab.start_handler().await;
    eventually(
        Duration::from_secs(10),
        "the seal before the gap",
        || async { (lab.store.last_seal().await.unwrap().0 == 1).then_some(()) },
    )
    .await;
    setup(&lab.client(), 0).await;
    assert_eq!(
        lab.store.last_seal().await.unwrap().0,
        1,
        "never over the gap"
    );
    let report = lab.store.verify().await.unwrap();
    assert_eq!(problem(&report), (2, Problem::Missing), "{report}");
    assert!(!handler.task.is_finished(), "the handler still runs");
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn an_empty_log_verifies() {
    let db = TestDb::create().await;
    let store = EventStore::new(db.pool.clone());
    assert_eq!(store.seal_pending(1000).await.unwrap(), 0);
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        (report.checked, report.head, report.sealed_through),
        (0, 0, 0)
    );
    db.cleanup().await;
}
