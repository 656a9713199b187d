//! Two handler processes race for few venvs with 200 `start_run`s while a fake executor finishes
//! runs: no venv is ever leased by two runs, and every run is assigned exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use runledger_test_support::{CommandClient, TestLab, eventually};
use runledger_types::CommandId;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

const RUNS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handlers_never_lease_a_venv_twice() {
    let lab = TestLab::create().await;
    let first = lab.start_handler_with(16).await;
    let second = lab.start_handler_with(16).await;
    let client = lab.client();
    let fixture = setup(&client, 3).await;

    let mut outcomes = Vec::new();
    for _ in 0..RUNS {
        let id = CommandId::new();
        outcomes.push(client.outcome_subscription(id).await);
        client
            .publish(id, "start_run", ADMIN, start_run(Uuid::now_v7(), &fixture))
            .await;
    }
    let executor = finish_assigned_runs(&lab, &client);
    for mut outcome in outcomes {
        accepted(&CommandClient::next_outcome(&mut outcome).await);
    }
    executor.await.unwrap();

    let log = lab.store.read_after(0, 100_000).await.unwrap();
    let mut holder: HashMap<String, Option<String>> = HashMap::new();
    let mut assigned = HashSet::new();
    let mut leases = 0;
    for event in &log {
        let run = event
            .data
            .get("run_id")
            .and_then(|r| r.as_str())
            .map(str::to_owned);
        match event.event_type.as_str() {
            "venv_leased" => {
                let slot = holder.entry(event.stream_id.to_string()).or_default();
                assert!(
                    slot.is_none(),
                    "{} leased while held by {slot:?}",
                    event.stream_id
                );
                *slot = run;
                leases += 1;
            }
            "venv_released" => {
                let slot = holder.entry(event.stream_id.to_string()).or_default();
                assert_eq!(*slot, run, "released by the run that held it");
                *slot = None;
            }
            "run_assigned" => assert!(assigned.insert(run.unwrap()), "a run was assigned twice"),
            _ => {}
        }
    }
    assert_eq!(leases, RUNS);
    assert_eq!(assigned.len(), RUNS);
    // Both handlers took work, and they did collide: the conflict-and-retry path ran.
    assert!(first.stats.groups() > 0 && second.stats.groups() > 0);
    let conflicts = first.stats.conflicts() + second.stats.conflicts();
    assert!(
        conflicts > 0,
        "the handlers never raced; the test proves nothing"
    );
    first.stop().await;
    second.stop().await;
    lab.cleanup().await;
}

/// A fake executor: starts and finishes every assigned run until all RUNS have finished.
fn finish_assigned_runs(lab: &TestLab, client: &CommandClient) -> tokio::task::JoinHandle<()> {
    let store = lab.store.clone();
    let client = client.clone();
    tokio::spawn(async move {
        let mut last = 0;
        let mut finished = 0;
        while finished < RUNS {
            let events = eventually(Duration::from_secs(30), "runs to be assigned", || {
                let store = store.clone();
                async move {
                    let page = store.read_after(last, 1000).await.unwrap();
                    (!page.is_empty()).then_some(page)
                }
            })
            .await;
            for event in events {
                last = event.position;
                if event.event_type != "run_assigned" {
                    continue;
                }
                let run_id = event.data["run_id"].clone();
                accepted(
                    &client
                        .send("report_run_started", EXECUTOR, json!({"run_id": run_id}))
                        .await,
                );
                let report = json!({"run_id": run_id, "status": "passed", "exit_code": 0});
                accepted(&client.send("report_run_finished", EXECUTOR, report).await);
                finished += 1;
            }
        }
    })
}
