//! The projector against real Postgres and NATS: read models from a mixed history of every event
//! type, rebuild equals incremental, crashes between batches, leadership, freshness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN, EXECUTOR, MACHINE_PASSWORD, accepted, setup};
use runledger_readmodel::{ALL, Freshness};
use runledger_test_support::{CommandClient, TestLab, eventually};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// Ids a test checks rows against.
struct History {
    passed_run: Uuid,
    cancelled_run: Uuid,
    waiting_run: Uuid,
    retired_run: Uuid,
    broken_venv: Uuid,
}

async fn send_ok(client: &CommandClient, kind: &str, actor: &str, payload: Value) {
    accepted(&client.send(kind, actor, payload).await);
}

/// A history touching every event type: users, machines (updated, key pinned, retired), venvs
/// (provisioned, failed, leased, released, removed), test cases, runs that pass, get cancelled,
/// wait, and a rejected command.
async fn history(client: &CommandClient) -> History {
    let fixture = setup(client, 2).await;
    let machine = fixture.machine_id;
    send_ok(
        client,
        "register_user",
        ADMIN,
        json!({"username": "mia", "role": "member", "password": "member-password"}),
    )
    .await;
    send_ok(
        client,
        "update_machine",
        ADMIN,
        json!({"machine_id": machine, "name": "lab-1-renamed", "labels": ["linux", "gpu"]}),
    )
    .await;
    send_ok(
        client,
        "report_host_key",
        EXECUTOR,
        json!({"machine_id": machine, "fingerprint": format!("SHA256:{}", "A".repeat(43))}),
    )
    .await;
    let broken_venv = Uuid::now_v7();
    send_ok(
        client,
        "add_venv",
        ADMIN,
        json!({"venv_id": broken_venv, "machine_id": machine, "name": "broken"}),
    )
    .await;
    send_ok(client, "report_venv_provisioning_failed", EXECUTOR, json!({"venv_id": broken_venv, "reason": "pip failed", "output_tail": "E: no such package"})).await;
    let start = |run_id: Uuid| json!({"run_id": run_id, "test_case_id": fixture.test_case_id, "machine_id": machine, "env": {"LEVEL": "3"}});

    let passed_run = Uuid::now_v7();
    send_ok(client, "start_run", "mia", start(passed_run)).await;
    send_ok(
        client,
        "report_run_started",
        EXECUTOR,
        json!({"run_id": passed_run}),
    )
    .await;
    for (seq, text) in ["collecting\n", "test_a PASSED\n", "1 passed\n"]
        .iter()
        .enumerate()
    {
        send_ok(
            client,
            "report_run_output",
            EXECUTOR,
            json!({"run_id": passed_run, "seq": seq + 1, "stream": "stdout", "text": text}),
        )
        .await;
    }
    let cancelled_run = Uuid::now_v7();
    send_ok(client, "start_run", ADMIN, start(cancelled_run)).await;
    send_ok(
        client,
        "report_run_started",
        EXECUTOR,
        json!({"run_id": cancelled_run}),
    )
    .await;
    // Both venvs are busy now: this one waits, first in the queue.
    let waiting_run = Uuid::now_v7();
    send_ok(client, "start_run", "mia", start(waiting_run)).await;
    send_ok(
        client,
        "cancel_run",
        ADMIN,
        json!({"run_id": cancelled_run, "reason": "not needed"}),
    )
    .await;
    send_ok(
        client,
        "report_run_finished",
        EXECUTOR,
        json!({"run_id": cancelled_run, "status": "cancelled", "reason": "cancelled on request"}),
    )
    .await;
    send_ok(
        client,
        "report_run_finished",
        EXECUTOR,
        json!({"run_id": passed_run, "status": "passed", "exit_code": 0,
        "summary": {"passed": 1, "failed": 0, "skipped": 0, "errors": 0}}),
    )
    .await;
    // The executor beats as executors do: liveness, kept out of the log and the read models.
    client
        .beat("e1", vec![runledger_types::RunId(waiting_run)])
        .await;

    // A second machine that is retired while a run waits for it.
    let other = Uuid::now_v7();
    send_ok(client, "register_machine", ADMIN, json!({"machine_id": other, "name": "lab-2", "host": "127.0.0.1",
        "port": 2223, "os": "linux", "username": "tester", "password": MACHINE_PASSWORD, "labels": []})).await;
    let retired_run = Uuid::now_v7();
    send_ok(
        client,
        "start_run",
        ADMIN,
        json!({"run_id": retired_run, "test_case_id": fixture.test_case_id, "machine_id": other}),
    )
    .await;
    send_ok(
        client,
        "retire_machine",
        ADMIN,
        json!({"machine_id": other}),
    )
    .await;
    send_ok(
        client,
        "remove_venv",
        ADMIN,
        json!({"venv_id": broken_venv}),
    )
    .await;
    let refused = client
        .send(
            "start_run",
            "mia",
            json!({"run_id": Uuid::now_v7(), "test_case_id": Uuid::now_v7()}),
        )
        .await;
    assert!(!refused.accepted);
    History {
        passed_run,
        cancelled_run,
        waiting_run,
        retired_run,
        broken_venv,
    }
}

/// Every read-model table, every row, as JSON in key order.
async fn dump(pool: &sqlx::PgPool) -> BTreeMap<String, Value> {
    let mut tables = BTreeMap::new();
    for model in ALL {
        for table in model.tables() {
            let sql = table.contents_sql(&model.schema());
            let text: String = sqlx::query_scalar(&sql).fetch_one(pool).await.expect(&sql);
            tables.insert(
                format!("{}.{}", model.schema(), table.name),
                serde_json::from_str(&text).unwrap(),
            );
        }
    }
    tables
}

async fn caught_up(lab: &TestLab) -> i64 {
    let head = lab.store.head().await.unwrap();
    eventually(WAIT, "read models reach the head", || async {
        let position = runledger_readmodel::projected_position(&lab.db.pool)
            .await
            .unwrap();
        (position >= head).then_some(position)
    })
    .await
}

fn row<'a>(
    tables: &'a BTreeMap<String, Value>,
    table: &str,
    key: &str,
    id: impl ToString,
) -> &'a Value {
    let id = id.to_string();
    tables[table]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row[key].as_str() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("no {table} row {key}={id}"))
}

#[tokio::test]
async fn read_models_follow_the_log_and_a_rebuild_reproduces_them_exactly() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    // Small batches: many transactions, rows carried across batch boundaries.
    let projector = lab.start_projector(3).await;
    let ids = history(&lab.client()).await;
    caught_up(&lab).await;
    let incremental = dump(&lab.db.pool).await;

    let passed = row(&incremental, "rm_runs.runs", "run_id", ids.passed_run);
    assert_eq!(passed["status"], "passed");
    assert_eq!(passed["requested_by"], "mia");
    assert_eq!(passed["test_case_name"], "smoke");
    assert_eq!(passed["machine_name"], "lab-1-renamed");
    assert_eq!(passed["venv_name"], "venv0");
    assert_eq!(passed["exit_code"], 0);
    assert_eq!(passed["summary"]["passed"], 1);
    assert_eq!(passed["output_bytes"], 34);
    assert!(passed["duration_ms"].as_i64().unwrap() >= 0);
    let cancelled = row(&incremental, "rm_runs.runs", "run_id", ids.cancelled_run);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_requested"], true);
    assert_eq!(cancelled["cancel_reason"], "not needed");
    // The waiting run got the venv the cancelled run released.
    assert_eq!(
        row(&incremental, "rm_runs.runs", "run_id", ids.waiting_run)["status"],
        "assigned"
    );
    assert_eq!(
        row(&incremental, "rm_runs.runs", "run_id", ids.retired_run)["status"],
        "queued"
    );
    let output = runledger_readmodel::run_output(&lab.db.pool, ids.passed_run, 0, 100)
        .await
        .unwrap();
    let text: Vec<&str> = output.iter().map(|chunk| chunk.text.as_str()).collect();
    assert_eq!(text.concat(), "collecting\ntest_a PASSED\n1 passed\n");
    // From an offset: the chunk holding byte 12 ("test_a PASSED\n" starts at 11) on.
    let tail = runledger_readmodel::run_output(&lab.db.pool, ids.passed_run, 12, 100)
        .await
        .unwrap();
    assert_eq!(
        tail.iter().map(|chunk| chunk.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(tail[0].byte_offset, 11);
    // Page by page, as the gateway serves a log: a chunk a page, then two from byte 12.
    let pool = &lab.db.pool;
    assert_eq!(
        output_pages(pool, ids.passed_run, 0, 1).await,
        ["collecting\n", "test_a PASSED\n", "1 passed\n"]
    );
    assert_eq!(
        output_pages(pool, ids.passed_run, 12, 2).await,
        ["est_a PASSED\n1 passed\n"]
    );
    assert_eq!(
        row(&incremental, "rm_venvs.venvs", "venv_id", ids.broken_venv)["status"],
        "removed"
    );
    let statuses: Vec<&str> = incremental["rm_venvs.venvs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"in_use") && statuses.contains(&"free"),
        "{statuses:?}"
    );
    let machine = &incremental["rm_machines.machines"][0];
    assert_eq!(machine["host_key"], format!("SHA256:{}", "A".repeat(43)));
    assert_eq!(machine["has_password"], true);
    let everything = serde_json::to_string(&incremental).unwrap();
    assert!(
        !everything.contains(MACHINE_PASSWORD),
        "a secret reached a read model"
    );
    assert!(
        !everything.contains("argon2"),
        "a password hash reached a read model"
    );

    // Why is my run waiting? Its machine was retired after it was queued.
    let queue = runledger_readmodel::queue(&lab.db.pool, 100).await.unwrap();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0].run_id, ids.retired_run);
    assert_eq!(queue[0].reason, "machine_retired");
    assert_eq!(queue[0].queued_reason.as_deref(), Some("no_free_venv"));

    let report = runledger_projections::rebuild(&lab.db.pool, &ALL, |_| {})
        .await
        .unwrap();
    assert_eq!(report.position, lab.store.head().await.unwrap());
    assert_eq!(
        dump(&lab.db.pool).await,
        incremental,
        "rebuild differs from incremental"
    );

    // The live projector carries on over the swapped-in tables.
    let late_run = Uuid::now_v7();
    let fixture_test_case =
        row(&incremental, "rm_test_cases.test_cases", "name", "smoke")["test_case_id"].clone();
    send_ok(
        &lab.client(),
        "start_run",
        ADMIN,
        json!({"run_id": late_run, "test_case_id": fixture_test_case, "labels": ["gpu"]}),
    )
    .await;
    caught_up(&lab).await;
    let after = dump(&lab.db.pool).await;
    assert_eq!(
        row(&after, "rm_runs.runs", "run_id", late_run)["status"],
        "assigned"
    );
    let statuses = runledger_readmodel::status(&lab.db.pool).await.unwrap();
    assert!(
        statuses.iter().all(|s| s.lag == 0
            && s.version
                == runledger_readmodel::ReadModel::parse(s.name)
                    .ok()
                    .map(|m| m.version())),
        "{statuses:?}"
    );

    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn a_projector_killed_between_and_inside_batches_resumes_without_loss_or_duplicates() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    // The first projector builds the (empty) read models; the history comes after.
    let builder = lab.start_projector(2).await;
    eventually(WAIT, "the read models are built", || async {
        let status = runledger_readmodel::status(&lab.db.pool).await.unwrap();
        status.iter().all(|s| s.version.is_some()).then_some(())
    })
    .await;
    builder.kill().await;
    history(&lab.client()).await;
    let head = lab.store.head().await.unwrap();
    // Kill one projector after another: every other one right after it committed a batch, the
    // rest at some instant, most likely inside a transaction.
    let mut kills = 0;
    while runledger_readmodel::projected_position(&lab.db.pool)
        .await
        .unwrap()
        < head
    {
        assert!(kills < 200, "no progress after {kills} crashes");
        let projector = lab.start_projector(2).await;
        if kills % 2 == 0 {
            // Polled every millisecond (not with `eventually`'s growing pauses), so that the
            // kill comes right after the first batch and not after the whole history.
            let deadline = std::time::Instant::now() + WAIT;
            while projector.stats.batches.load(Ordering::SeqCst) == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the projector commits no batch"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(kills % 7 * 5)).await;
        }
        projector.kill().await;
        kills += 1;
    }
    assert!(
        kills > 3,
        "the test did not crash the projector often ({kills})"
    );
    let projector = lab.start_projector(2).await;
    caught_up(&lab).await;
    let resumed = dump(&lab.db.pool).await;
    let chunks = resumed["rm_runs.run_output"].as_array().unwrap().len();
    assert_eq!(chunks, 3, "every output chunk once");
    runledger_projections::rebuild(&lab.db.pool, &ALL, |_| {})
        .await
        .unwrap();
    assert_eq!(dump(&lab.db.pool).await, resumed);
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn one_of_two_projectors_leads_and_the_other_takes_over() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let first = lab.start_projector(100).await;
    eventually(WAIT, "the first projector leads", || async {
        first.stats.leader.load(Ordering::SeqCst).then_some(())
    })
    .await;
    let second = lab.start_projector(100).await;
    let client = lab.client();
    setup(&client, 1).await;
    caught_up(&lab).await;
    assert!(!second.stats.leader.load(Ordering::SeqCst));
    assert_eq!(
        second.stats.batches.load(Ordering::SeqCst),
        0,
        "the follower wrote"
    );

    first.kill().await;
    eventually(WAIT, "the second projector takes over", || async {
        second.stats.leader.load(Ordering::SeqCst).then_some(())
    })
    .await;
    send_ok(
        &client,
        "register_user",
        ADMIN,
        json!({"username": "late", "role": "member", "password": "member-password"}),
    )
    .await;
    caught_up(&lab).await;
    let users = dump(&lab.db.pool).await["rm_users.users"].clone();
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
    second.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test]
async fn readers_wait_for_a_position_with_a_bound() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(100).await;
    let shutdown = CancellationToken::new();
    let freshness = Freshness::start(lab.db.pool.clone(), shutdown.clone())
        .await
        .unwrap();
    let outcome = lab
        .client()
        .send(
            "register_user",
            "bootstrap",
            json!({"username": "ada", "role": "admin", "password": "admin-password"}),
        )
        .await;
    let position = accepted(&outcome).events[0].position;
    freshness.wait_for(position, WAIT).await.unwrap();
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rm_users.users WHERE username = 'ada'")
            .fetch_one(&lab.db.pool)
            .await
            .unwrap();
    assert_eq!(users, 1, "read your write");
    let too_far = freshness
        .wait_for(position + 1_000, Duration::from_millis(200))
        .await;
    assert!(too_far.is_err(), "{too_far:?}");
    shutdown.cancel();
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

/// A run's output read with [`runledger_readmodel::OutputText`], page by page.
async fn output_pages(pool: &sqlx::PgPool, run_id: Uuid, from: i64, page: i64) -> Vec<String> {
    let mut text = runledger_readmodel::OutputText::new(pool.clone(), run_id, from, page);
    let mut pages = Vec::new();
    while let Some(next) = text.next_page().await.unwrap() {
        pages.push(next);
    }
    pages
}
