//! The queries the gateway and the CLI show, against a real Postgres: run history with its
//! filters and keyset pages, one run with its events, and the lab's inventory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Lab;
use runledger_readmodel::history::{self, Filters, Sort};
use runledger_readmodel::rows::VenvStatus;
use runledger_readmodel::runs::{self, EventsQuery};
use runledger_readmodel::{ReadModelError, lab};
use runledger_types::RunStatus;
use serde_json::json;
use uuid::Uuid;

const ADMIN: &str = "ada";

/// A lab with an admin, a test case, and three runs waiting (no machine can take them).
async fn three_queued_runs() -> (Lab, Vec<Uuid>) {
    let lab = Lab::start().await;
    let admin = json!({"username": ADMIN, "role": "admin", "password": "ada-password-1"});
    lab.send("register_user", "bootstrap", admin).await;
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "unit", "command": "true"});
    lab.send("define_test_case", ADMIN, test_case).await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let run_id = Uuid::now_v7();
        let start = json!({"run_id": run_id, "test_case_id": test_case_id, "labels": ["gpu"]});
        lab.send("start_run", ADMIN, start).await;
        runs.push(run_id);
    }
    (lab, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_pages_newest_first_and_filters_by_status() {
    let (lab, runs) = three_queued_runs().await;
    let all = Filters::default();
    let first = history::page(lab.pool(), &all, Sort::default(), 2, None)
        .await
        .unwrap();
    let ids: Vec<Uuid> = first.rows.iter().map(|run| run.run_id).collect();
    assert_eq!(ids, [runs[2], runs[1]]);
    assert!(first.rows.iter().all(|run| run.status == RunStatus::Queued));
    let cursor = first.next_cursor.unwrap();
    let second = history::page(lab.pool(), &all, Sort::default(), 2, Some(&cursor))
        .await
        .unwrap();
    assert_eq!(
        second.rows.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        [runs[0]]
    );
    assert!(second.next_cursor.is_none());

    let oldest_first = Sort::parse(Some("queued_at")).unwrap();
    let wrong = history::page(lab.pool(), &all, oldest_first, 2, Some(&cursor)).await;
    assert!(
        matches!(wrong, Err(ReadModelError::History(_))),
        "{wrong:?}"
    );
    let passed = Filters {
        statuses: vec![RunStatus::Passed],
        ..Filters::default()
    };
    let none = history::page(lab.pool(), &passed, Sort::default(), 10, None)
        .await
        .unwrap();
    assert!(none.rows.is_empty());
    let by_duration = Sort::parse(Some("-duration")).unwrap();
    let unstarted = history::page(lab.pool(), &all, by_duration, 10, None)
        .await
        .unwrap();
    assert_eq!(
        unstarted.rows.len(),
        3,
        "runs that never ran come last, not never"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_shows_why_it_waits_and_its_events() {
    let (lab, runs) = three_queued_runs().await;
    let detail = runs::run_detail(lab.pool(), runs[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.run.status, RunStatus::Queued);
    assert!(detail.tests.is_none());
    assert!(detail.queue_reason.is_some());
    assert!(
        runs::run_detail(lab.pool(), Uuid::now_v7())
            .await
            .unwrap()
            .is_none()
    );
    let query = EventsQuery {
        run_id: runs[0],
        output: false,
        after_version: 0,
        limit: 1,
    };
    let events = runs::run_events(lab.pool(), &query).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].document["type"], "run_requested");
    assert_eq!(events[0].stream_version, 1);
    assert!(runs::run_in_log(lab.pool(), runs[0]).await.unwrap());
    assert!(!runs::run_in_log(lab.pool(), Uuid::now_v7()).await.unwrap());
    let document = runs::run_document(lab.pool(), runs[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(document["status"], "queued");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_lists_machines_venvs_and_test_cases() {
    let (lab, _) = three_queued_runs().await;
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "here", "host": "local",
                         "username": "runner"});
    lab.send("register_machine", ADMIN, machine).await;
    let venv_id = Uuid::now_v7();
    let venv = json!({"venv_id": venv_id, "machine_id": machine_id, "name": "v"});
    lab.send("add_venv", ADMIN, venv).await;

    let machines = lab::machines(lab.pool()).await.unwrap();
    assert_eq!(
        machines.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["here"]
    );
    let venvs = lab::venvs(lab.pool()).await.unwrap();
    assert_eq!(venvs.len(), 1);
    assert_eq!(venvs[0].status, VenvStatus::Provisioning);
    let counts = lab::venv_counts(lab.pool()).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (
            counts[0].machine.as_str(),
            counts[0].status,
            counts[0].count
        ),
        ("here", VenvStatus::Provisioning, 1)
    );
    let test_cases = lab::test_cases(lab.pool()).await.unwrap();
    assert_eq!(test_cases[0].command.as_deref(), Some("true"));

    let documents = lab::venv_documents(lab.pool()).await.unwrap();
    assert_eq!(documents[0]["status"], "provisioning");
    assert_eq!(documents[0]["venv_id"], json!(venv_id));
    let documents = lab::machine_documents(lab.pool()).await.unwrap();
    assert_eq!(documents[0]["has_password"], false);
    let documents = lab::test_case_documents(lab.pool()).await.unwrap();
    assert_eq!(documents[0]["name"], "unit");
    lab.stop().await;
}
