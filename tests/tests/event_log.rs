//! The Postgres event log: append-only, optimistic concurrency, gap-safe order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{batch_of, heartbeat};
use runledger_store::StoreError;
use runledger_test_support::TestDb;
use runledger_types::{EventId, NewEvent};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[tokio::test]
async fn the_log_refuses_update_delete_and_truncate() {
    let db = TestDb::create().await;
    let store = runledger_store::EventStore::new(db.pool.clone());
    store
        .append(&batch_of(vec![heartbeat("a", 1)], Some(0)))
        .await
        .unwrap();
    for sql in [
        "UPDATE events SET actor = 'mallory'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE commands SET accepted = false",
        "DELETE FROM commands",
    ] {
        let err = sqlx::query(sql).execute(&db.pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.read_after(0, 10).await.unwrap().len(), 1);
    db.cleanup().await;
}

#[tokio::test]
async fn stale_heads_taken_versions_and_repeated_commands_conflict() {
    let db = TestDb::create().await;
    let store = runledger_store::EventStore::new(db.pool.clone());
    let first = batch_of(vec![heartbeat("a", 1), heartbeat("a", 2)], Some(0));
    let outcomes = store.append(&first).await.unwrap().outcomes;
    assert_eq!(
        outcomes[0]
            .events
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>(),
        [1, 2]
    );

    let stale = store
        .append(&batch_of(vec![heartbeat("b", 1)], Some(0)))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let ahead = store
        .append(&batch_of(vec![heartbeat("b", 1)], Some(5)))
        .await;
    assert!(matches!(ahead, Err(StoreError::Conflict(_))), "{ahead:?}");
    // Both ways of appending: at a known head (one statement) and at whatever the head is.
    for expected_head in [Some(2), None] {
        let taken = store
            .append(&batch_of(vec![heartbeat("a", 2)], expected_head))
            .await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
        let mut again = batch_of(vec![heartbeat("c", 1)], expected_head);
        again.commands[0].command_id = first.commands[0].command_id;
        assert!(matches!(
            store.append(&again).await,
            Err(StoreError::AlreadyHandled)
        ));
    }

    // Nothing of the refused batches was written; the head is where it was.
    assert_eq!(store.head().await.unwrap(), 2);
    let known = store
        .outcomes(&[first.commands[0].command_id])
        .await
        .unwrap();
    assert_eq!(known[&first.commands[0].command_id], outcomes[0]);
    db.cleanup().await;
}

/// 16 writers append concurrently, half at whatever the head is and half at the head they read,
/// while a follower reads by position: the follower must see every event exactly once, in the
/// order the log reports, with no gap ever skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_sees_every_event_once_in_order_under_concurrent_writers() {
    const WRITERS: usize = 16;
    const BATCHES: i64 = 60;
    let db = TestDb::create().await;
    let pool = runledger_store::connect(&db.url, 24).await.unwrap();
    let store = runledger_store::EventStore::new(pool);
    let done = Arc::new(AtomicBool::new(false));

    let follower = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = store.read_after(last, 100).await.unwrap();
                for record in &page {
                    assert_eq!(record.position, last + 1, "follower saw a gap");
                    last = record.position;
                    seen.push(record.event_id);
                }
                if finished && page.is_empty() {
                    return seen;
                }
            }
        })
    };

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let name = format!("w{writer}");
            let mut version = 0;
            let mut written = Vec::new();
            for batch in 0..BATCHES {
                let size = 1 + (batch % 3);
                let events: Vec<NewEvent> = (0..size)
                    .map(|_| {
                        version += 1;
                        heartbeat(&name, version)
                    })
                    .collect();
                written.extend(events.iter().map(|e| e.event_id));
                if writer % 2 == 0 {
                    store.append(&batch_of(events, None)).await.unwrap();
                    continue;
                }
                // The other half append at the head they read (one statement), again on
                // conflict, as the handler's pipelined groups do.
                loop {
                    let head = store.head().await.unwrap();
                    match store.append(&batch_of(events.clone(), Some(head))).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict(_)) => continue,
                        Err(err) => panic!("append at {head}: {err}"),
                    }
                }
            }
            written
        }));
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let seen = follower.await.unwrap();

    assert_eq!(seen.len(), written.len(), "every event seen exactly once");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no duplicates"
    );
    assert!(seen.iter().all(|id| written.contains(id)));
    let log: Vec<EventId> = store
        .read_after(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(seen, log, "the follower's order is the log's order");
    db.cleanup().await;
}
