//! A quarantine with an end lapses by itself: the handler's quarantine watch sends
//! `lapse_quarantine` once the end has passed, and the log records `test_released` with
//! `lapsed: true`, as the watch's actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_handler::quarantine_watch::QUARANTINE_WATCH_ACTOR;
use runledger_test_support::{TestLab, eventually};
use runledger_types::Event;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_lapses_by_itself_once_its_end_has_passed() {
    let lab = TestLab::create().await;
    // A short lease: the intake loop hands the watch the quarantines every half second.
    let handler = lab.start_handler_with_lease(Duration::from_secs(3)).await;
    let client = lab.client();
    let test_id = Uuid::now_v7();
    let until = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let quarantine =
        json!({"test_id": test_id, "reason": "flaky on the new runner", "until": until});
    client
        .accept("quarantine_test", "jenkins", quarantine)
        .await;
    let early = client
        .send("lapse_quarantine", "jenkins", json!({"test_id": test_id}))
        .await;
    assert_eq!(
        early.error.map(|rejection| rejection.code.as_str()),
        Some("quarantine_not_lapsed")
    );
    let lapsed = eventually(Duration::from_secs(30), "the quarantine to lapse", || async {
        let records = lab.store.read_after(0, 1000).await.ok()?;
        records.into_iter().find(|record| {
            matches!(record.decode(), Ok(Event::TestReleased(e)) if e.test_id.0 == test_id && e.lapsed)
        })
    })
    .await;
    assert_eq!(lapsed.actor, QUARANTINE_WATCH_ACTOR);
    assert_eq!(lapsed.stream_id, format!("test-{test_id}"));
    assert!(
        lapsed.recorded_at >= until,
        "recorded at the decision, after the end"
    );
    handler.stop().await;
    lab.cleanup().await;
}
