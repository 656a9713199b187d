//! `runledger audit`: the log filtered by stream, type, actor, time and position (through
//! `EventStore::audit_page` and through the real binary), `--follow`, and time travel
//! (`runledger audit state`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "audit/cli.rs"]
mod cli;
mod common;
#[path = "audit/travel.rs"]
mod travel;

use common::*;
use runledger_store::AuditFilter;
use runledger_test_support::{RunningHandler, TestLab};
use runledger_types::{EventRecord, Outcome};
use serde_json::json;
use uuid::Uuid;

/// A small mixed history built through real commands: users, a machine with two provisioned
/// venvs, a test case, a rejected command, and two runs that share venv 0 (the second waits in
/// the queue until the first finishes).
pub struct History {
    pub lab: TestLab,
    handler: RunningHandler,
    pub fixture: Fixture,
    pub run1: Uuid,
    pub run2: Uuid,
    /// `start_run` of run 1: requested, venv leased, assigned.
    pub run1_started: Outcome,
    /// `start_run` of run 2: requested, queued.
    pub run2_queued: Outcome,
    /// run 1 finishes: finished, venv released, venv leased by run 2, run 2 assigned.
    pub run1_finished: Outcome,
    /// run 2 finishes.
    pub run2_finished: Outcome,
    /// Every event, in order.
    pub all: Vec<EventRecord>,
}

impl History {
    pub async fn build() -> Self {
        let lab = TestLab::create().await;
        let handler = lab.start_handler().await;
        let client = lab.client();
        let fixture = setup(&client, 2).await;
        let bob = json!({"username": "bob", "role": "member", "password": "bob-password"});
        accepted(&client.send("register_user", ADMIN, bob).await);
        let eve = json!({"username": "eve", "role": "admin", "password": "eve-password"});
        rejected_with(&client.send("register_user", "bob", eve).await, "forbidden");
        let (run1, run2) = (Uuid::now_v7(), Uuid::now_v7());
        let venv0 = fixture.venv_ids[0];
        let start = |run_id| json!({"run_id": run_id, "test_case_id": fixture.test_case_id, "venv_id": venv0});
        let run1_started = client.send("start_run", ADMIN, start(run1)).await;
        let run2_queued = client.send("start_run", "bob", start(run2)).await;
        assert_eq!(event_types(&run2_queued), ["run_requested", "run_queued"]);
        let run1_finished = finish(&client, run1).await;
        let run2_finished = finish(&client, run2).await;
        let all = lab.store.read_after(0, 10_000).await.unwrap();
        Self {
            lab,
            handler,
            fixture,
            run1,
            run2,
            run1_started: accepted(&run1_started).clone(),
            run2_queued,
            run1_finished,
            run2_finished,
            all,
        }
    }

    /// The positions of the events `keep` selects, as the log holds them.
    pub fn expected(&self, keep: impl Fn(&EventRecord) -> bool) -> Vec<i64> {
        let positions: Vec<i64> = self
            .all
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.position)
            .collect();
        assert!(!positions.is_empty(), "the case must select something");
        assert!(
            positions.len() < self.all.len(),
            "the case must leave something out"
        );
        positions
    }

    /// The positions `audit_page` returns for `filter`, paged three at a time.
    pub async fn audited(&self, filter: &AuditFilter) -> Vec<i64> {
        let mut positions = Vec::new();
        loop {
            let after = positions.last().copied().unwrap_or(0);
            let page = self.lab.store.audit_page(filter, after, 3).await.unwrap();
            positions.extend(page.iter().map(|e| e.position));
            if page.len() < 3 {
                return positions;
            }
        }
    }

    pub async fn cleanup(self) {
        self.handler.stop().await;
        self.lab.cleanup().await;
    }
}

/// Starts and finishes a run as the executor would.
async fn finish(client: &runledger_test_support::CommandClient, run_id: Uuid) -> Outcome {
    accepted(
        &client
            .send("report_run_started", EXECUTOR, json!({"run_id": run_id}))
            .await,
    );
    let report = json!({"run_id": run_id, "status": "passed", "exit_code": 0});
    accepted(&client.send("report_run_finished", EXECUTOR, report).await).clone()
}

/// Which events a case expects, decided over the whole log in memory.
type Keep<'a> = Box<dyn Fn(&EventRecord) -> bool + 'a>;

fn filter() -> AuditFilter {
    AuditFilter::default()
}

#[tokio::test]
async fn each_filter_selects_exactly_its_events() {
    let history = History::build().await;
    let run1_stream = format!("run-{}", history.run1);
    let run1_chain = history
        .all
        .iter()
        .find(|e| e.event_type == "run_requested" && e.stream_id == run1_stream)
        .and_then(|e| e.correlation_id)
        .expect("a command's events carry a correlation id");
    let cases: Vec<(&str, AuditFilter, Keep<'_>)> = vec![
        (
            "stream id",
            AuditFilter {
                streams: vec![run1_stream.clone()],
                ..filter()
            },
            Box::new(|e| e.stream_id == run1_stream),
        ),
        (
            "stream type",
            AuditFilter {
                streams: vec!["venv".into()],
                ..filter()
            },
            Box::new(|e| e.stream_id.starts_with("venv-")),
        ),
        (
            "stream type with an underscore",
            AuditFilter {
                streams: vec!["test_case".into()],
                ..filter()
            },
            Box::new(|e| e.stream_id.starts_with("test_case-")),
        ),
        (
            "stream id or type",
            AuditFilter {
                streams: vec![run1_stream.clone(), "user".into()],
                ..filter()
            },
            Box::new(|e| e.stream_id == run1_stream || e.stream_id.starts_with("user-")),
        ),
        (
            "types",
            AuditFilter {
                types: vec!["run_assigned".into(), "venv_leased".into()],
                ..filter()
            },
            Box::new(|e| e.event_type == "run_assigned" || e.event_type == "venv_leased"),
        ),
        (
            "actor",
            AuditFilter {
                actors: vec![EXECUTOR.into()],
                ..filter()
            },
            Box::new(|e| e.actor == EXECUTOR),
        ),
        (
            "correlation: the chain of run 1's start_run",
            AuditFilter {
                correlations: vec![run1_chain],
                ..filter()
            },
            Box::new(move |e| e.correlation_id == Some(run1_chain)),
        ),
        (
            "positions, inclusive",
            AuditFilter {
                from: Some(5),
                to: Some(9),
                ..filter()
            },
            Box::new(|e| (5..=9).contains(&e.position)),
        ),
    ];
    for (name, filter, keep) in cases {
        assert_eq!(
            history.audited(&filter).await,
            history.expected(keep),
            "{name}"
        );
    }
    history.cleanup().await;
}

#[tokio::test]
async fn since_is_inclusive_until_exclusive_and_filters_combine() {
    let history = History::build().await;
    let middle = history.all[history.all.len() / 2].recorded_at;
    let since = AuditFilter {
        since: Some(middle),
        ..filter()
    };
    let until = AuditFilter {
        until: Some(middle),
        ..filter()
    };
    let (after, before) = (history.audited(&since).await, history.audited(&until).await);
    assert_eq!(after, history.expected(|e| e.recorded_at >= middle));
    assert_eq!(before, history.expected(|e| e.recorded_at < middle));
    assert_eq!(
        after.len() + before.len(),
        history.all.len(),
        "a split, no overlap"
    );

    let bob_runs = AuditFilter {
        streams: vec!["run".into()],
        actors: vec!["bob".into(), EXECUTOR.into()],
        types: vec!["run_requested".into(), "run_finished".into()],
        from: Some(2),
        ..filter()
    };
    let expected = history.expected(|e| {
        e.stream_id.starts_with("run-")
            && (e.actor == "bob" || e.actor == EXECUTOR)
            && (e.event_type == "run_requested" || e.event_type == "run_finished")
    });
    assert_eq!(history.audited(&bob_runs).await, expected);
    assert_eq!(expected.len(), 3, "bob's request and both runs' ends");

    let rejected = AuditFilter {
        actors: vec!["bob".into()],
        types: vec!["command_rejected".into()],
        ..filter()
    };
    let found = history
        .lab
        .store
        .audit_page(&rejected, 0, 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        found[0].stream_id.starts_with("command-"),
        "{}",
        found[0].stream_id
    );

    for nothing in [
        AuditFilter {
            actors: vec!["admin' OR '1'='1".into()],
            ..filter()
        },
        AuditFilter {
            streams: vec!["ru".into(), "%".into(), "_un".into()],
            ..filter()
        },
        AuditFilter {
            from: Some(9),
            to: Some(8),
            ..filter()
        },
    ] {
        assert!(history.audited(&nothing).await.is_empty(), "{nothing:?}");
    }
    history.cleanup().await;
}
