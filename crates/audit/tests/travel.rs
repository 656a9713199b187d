//! Time travel against a real Postgres log: the lab right after a position, and as it stood at
//! a time, folded with the domain's `evolve` (finished runs kept).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use runledger_audit::{Point, StateReport, Subject, lab_at};
use runledger_domain::{RunPhase, VenvStatus};
use runledger_types::{RunStatus, StreamId, StreamType};
use serde_json::json;

/// A log holding [`a_run_from_start_to_end`], event `n` (from 1) recorded at second `10 * n`.
async fn history() -> Log {
    let mut log = Log::create().await;
    for (n, event) in (1..).zip(a_run_from_start_to_end()) {
        assert_eq!(log.append(vec![event], second(10 * n)).await, n);
    }
    log
}

#[tokio::test]
async fn the_state_at_a_position_is_the_log_folded_through_it() {
    let log = history().await;
    let phase = |snapshot: &runledger_audit::Snapshot| snapshot.lab.run(&RUN).map(|run| run.phase);
    let venv = |snapshot: &runledger_audit::Snapshot| snapshot.lab.venv(&VENV).map(|v| v.status);

    let requested = lab_at(&log.store, Point::Position(5)).await.unwrap();
    assert_eq!(requested.as_of.position, 5);
    assert_eq!(requested.as_of.recorded_at, Some(second(50)));
    assert_eq!(requested.lab.position(), 5);
    assert_eq!(phase(&requested), Some(RunPhase::Requested));
    assert_eq!(venv(&requested), Some(VenvStatus::Free));

    let assigned = lab_at(&log.store, Point::Position(7)).await.unwrap();
    assert_eq!(phase(&assigned), Some(RunPhase::Assigned));
    assert_eq!(venv(&assigned), Some(VenvStatus::Leased(RUN)));
    let report = StateReport::new(&assigned, Subject::Run(RUN)).unwrap();
    let report = serde_json::to_value(report).unwrap();
    assert_eq!(report["as_of"]["position"], 7);
    assert_eq!(
        (&report["run"]["status"], &report["run"]["attempt"]),
        (&json!("assigned"), &json!(1))
    );

    let finished = lab_at(&log.store, Point::Position(9)).await.unwrap();
    assert_eq!(
        phase(&finished),
        Some(RunPhase::Finished(RunStatus::Passed)),
        "time travel keeps finished runs"
    );
    assert_eq!(venv(&finished), Some(VenvStatus::Leased(RUN)));
    let run_stream = StreamId::new(StreamType::Run, RUN);
    assert_eq!(finished.lab.stream_version(&run_stream), 4);

    let empty = lab_at(&log.store, Point::Position(0)).await.unwrap();
    assert_eq!((empty.as_of.position, empty.as_of.recorded_at), (0, None));
    assert!(StateReport::new(&empty, Subject::Pool(MACHINE)).is_none());

    for beyond in [Point::Position(999), Point::Head] {
        let now = lab_at(&log.store, beyond).await.unwrap();
        assert_eq!(now.as_of.position, 10, "{beyond:?}");
        assert_eq!(venv(&now), Some(VenvStatus::Free));
    }
    log.cleanup().await;
}

#[tokio::test]
async fn the_state_at_a_time_is_after_the_last_event_recorded_by_then() {
    let log = history().await;
    let at = |s| lab_at(&log.store, Point::Time(second(s)));

    let between = at(65).await.unwrap();
    assert_eq!(between.as_of.position, 6);
    assert_eq!(between.as_of.recorded_at, Some(second(60)));
    assert_eq!(
        between.lab.venv(&VENV).map(|v| v.status),
        Some(VenvStatus::Leased(RUN))
    );
    assert_eq!(
        between.lab.run(&RUN).map(|run| run.phase),
        Some(RunPhase::Requested)
    );

    let exactly = at(70).await.unwrap();
    assert_eq!(
        exactly.as_of.position, 7,
        "an event recorded at the time is included"
    );
    assert_eq!(
        exactly.lab.run(&RUN).map(|run| run.phase),
        Some(RunPhase::Assigned)
    );

    let before = at(5).await.unwrap();
    assert_eq!(before.as_of.position, 0);
    assert!(before.lab.machine(&MACHINE).is_none());

    let after = at(1000).await.unwrap();
    assert_eq!(after.as_of.position, 10);
    log.cleanup().await;
}

#[tokio::test]
async fn a_fold_reads_the_log_page_after_page() {
    let mut log = Log::create().await;
    let mut events = a_run_from_start_to_end();
    events.truncate(5);
    log.append(events, second(1)).await;
    let heartbeats = (0..1200).map(|_| heartbeat()).collect();
    assert_eq!(log.append(heartbeats, second(2)).await, 1205);
    let executor = StreamId::new(StreamType::Executor, "e1");

    let across = lab_at(&log.store, Point::Position(1003)).await.unwrap();
    assert_eq!(across.as_of.position, 1003);
    assert_eq!(across.lab.stream_version(&executor), 998);
    assert_eq!(
        across.lab.run(&RUN).map(|run| run.phase),
        Some(RunPhase::Requested)
    );
    let head = lab_at(&log.store, Point::Head).await.unwrap();
    assert_eq!(head.as_of.position, 1205);
    assert_eq!(head.lab.stream_version(&executor), 1200);
    log.cleanup().await;
}
