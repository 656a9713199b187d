//! The pipelined append's gate, against a real log: a group decided on top of another is
//! appended only once that one committed, whatever the head says.

use super::append_on_top;
use runledger_store::{AppendBatch, CommandRecord, EventStore, StoreError};
use runledger_test_support::TestDb;
use runledger_types::event::{Event, ExecutorHeartbeat};
use runledger_types::{Actor, CommandId, EventId, NewEvent};
use tokio::sync::oneshot;

/// One command with one event, decided on the log head `expected_head`.
fn group(expected_head: i64) -> AppendBatch {
    let event = Event::ExecutorHeartbeat(ExecutorHeartbeat {
        executor: "pipeline-test".to_owned(),
        run_ids: vec![],
    });
    let event = NewEvent {
        event_id: EventId::new(),
        stream_id: event.stream_id(),
        stream_version: expected_head + 1,
        event,
        recorded_at: chrono::Utc::now(),
        actor: Actor::parse("test").unwrap(),
        command_id: CommandId::new(),
        correlation_id: None,
        causation_id: None,
    };
    AppendBatch {
        expected_head: Some(expected_head),
        commands: vec![CommandRecord {
            command_id: event.command_id,
            command_type: "executor_heartbeat".into(),
            actor: "test".into(),
            events: 0..1,
            rejection: None,
        }],
        events: vec![event],
    }
}

#[tokio::test]
async fn a_group_on_top_of_one_that_did_not_commit_is_never_appended_though_the_head_matches() {
    let db = TestDb::create().await;
    let store = EventStore::new(db.pool.clone());
    // The group beneath (decided at 0) lost its race: another handler's event took the head
    // to 1, which is exactly where the group on top of it expects the head to be.
    store.append(&group(0)).await.unwrap();
    let (beneath, after) = oneshot::channel();
    let (ended, on_top_ended) = oneshot::channel();
    let on_top = tokio::spawn(append_on_top(store.clone(), group(1), Some(after), ended));
    beneath.send(false).unwrap();
    let refused = on_top.await.unwrap();
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(on_top_ended.await, Ok(false));
    assert_eq!(store.head().await.unwrap(), 1, "nothing was appended");

    // A group beneath that went away without a word did not commit either.
    let (beneath, after) = oneshot::channel::<bool>();
    let (ended, _) = oneshot::channel();
    drop(beneath);
    let refused = append_on_top(store.clone(), group(1), Some(after), ended).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))));

    // On top of a committed group, it is appended, and says so to the group on top of it.
    let (beneath, after) = oneshot::channel();
    let (ended, on_top_ended) = oneshot::channel();
    beneath.send(true).unwrap();
    append_on_top(store.clone(), group(1), Some(after), ended)
        .await
        .unwrap();
    assert_eq!(on_top_ended.await, Ok(true));
    assert_eq!(store.head().await.unwrap(), 2);
    db.cleanup().await;
}
