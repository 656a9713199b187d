//! Insight across runs over HTTP, against a real handler, projector and gateway: runs whose
//! per-test results are reported as an executor would, then the tests list (filters, sorts,
//! pages), a test's history and flake evidence, a test case's trend, and the same answers after
//! the tests read model is rebuilt from the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::StatusCode;
use runledger_insights::TestKey;
use runledger_test_support::{
    TestLab, WOBBLY_MESSAGE, lab_for_reported_runs, reported_run, wobbly_suite,
};
use runledger_types::TestCaseId;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const EXEC: &str = "executor:e1";
const ADMIN: &str = common::ADMIN.0;
const RUNS: usize = 6;

fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_are_listed_with_their_history_flakiness_and_trend_and_rebuild_the_same() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;
    let shutdown = CancellationToken::new();
    let addr = common::serve_gateway(&lab, &shutdown).await;
    let api = common::AdminApi::at(addr).await;
    let client = lab.client();
    let test_case_id = lab_for_reported_runs(&client, ADMIN, EXEC).await;
    let mut runs = Vec::new();
    for n in 1..=RUNS {
        let (status, tests) = wobbly_suite(n);
        runs.push(reported_run(&client, (ADMIN, EXEC), test_case_id, status, tests).await);
    }
    let head = lab.store.head().await.unwrap();
    let listed = |query: String| {
        let api = &api;
        async move {
            api.get(&format!("/api/v1/tests?min_position={head}&{query}"))
                .await
        }
    };

    // Every test of the test case, the most failing first.
    let (status, page) = listed(format!("test_case_id={test_case_id}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page)[0], "test_wobbly");
    let wobbly = &page["items"][0];
    assert_eq!(wobbly["runs"], RUNS);
    assert_eq!(wobbly["fail_rate"], 0.5);
    assert_eq!(wobbly["flaky"], true);
    assert_eq!(wobbly["flaky_score"], 1.0);
    assert_eq!(wobbly["last_status"], "failed");
    let expected_id = TestKey::new(TestCaseId(test_case_id), "tests.test_app", "test_wobbly")
        .id()
        .0;
    assert_eq!(
        wobbly["test_id"],
        json!(expected_id),
        "clients can compute ids"
    );

    // Filters and sorts.
    let (_, flaky) = listed("flaky=true".into()).await;
    assert_eq!(names(&flaky), ["test_wobbly"]);
    let (_, slowest) = listed("sort=-duration_p90".into()).await;
    assert_eq!(names(&slowest)[0], "test_slow");
    let (_, found) = listed("q=STEAD".into()).await;
    assert_eq!(names(&found), ["test_steady"]);
    let (_, by_name) = listed("sort=name&limit=2".into()).await;
    assert_eq!(names(&by_name), ["test_slow", "test_steady"]);
    let cursor = by_name["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = listed(format!("sort=name&limit=2&cursor={cursor}")).await;
    assert_eq!(names(&rest), ["test_wobbly"]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // A bad request is a 400 naming the parameter.
    for query in [
        "sort=colour",
        "status=green",
        "limit=0",
        "cursor=nope",
        "nonsense=1",
        "q=a%00b",
    ] {
        let (status, answer) = listed(query.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request", "{query}: {answer}");
    }
    let (status, _) = listed(format!("sort=-fail_rate&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a cursor of another sort");

    // One test: history newest first, paged; the evidence names the runs it flipped between.
    let detail_path = format!("/api/v1/tests/{expected_id}?min_position={head}&limit=4");
    let (status, detail) = api.get(&detail_path).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let history = detail["history"].as_array().unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0]["run_id"], json!(runs[RUNS - 1]));
    assert_eq!(history[0]["message"], WOBBLY_MESSAGE);
    assert_eq!(history[0]["machine_name"], "here");
    let (_, older) = api
        .get(&format!(
            "{detail_path}&cursor={}",
            detail["next_cursor"].as_str().unwrap()
        ))
        .await;
    let older: Vec<&Value> = older["history"].as_array().unwrap().iter().collect();
    assert_eq!(older.len(), 2);
    assert_eq!(older[1]["run_id"], json!(runs[0]));
    let flips = detail["flakiness"]["flips"].as_array().unwrap();
    assert_eq!(flips.len(), RUNS - 1);
    assert_eq!(flips[0]["from_run"], json!(runs[0]));
    assert_eq!(flips[0]["to_run"], json!(runs[1]));
    assert!(detail["first_seen_at"].is_string());
    // A window of 1 result compares nothing.
    let (_, narrow) = api
        .get(&format!("/api/v1/tests/{expected_id}?window=1"))
        .await;
    assert_eq!(narrow["flakiness"]["flaky"], false);
    let (status, _) = api
        .get(&format!("/api/v1/tests/{expected_id}?window=51"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get(&format!("/api/v1/tests/{}", Uuid::nil())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The trend: one bucket today with every run.
    let (status, trend) = api
        .get(&format!(
            "/api/v1/test-cases/{test_case_id}/trend?bucket=hour"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{trend}");
    let points = trend["points"].as_array().unwrap();
    let total: i64 = points.iter().map(|p| p["runs"].as_i64().unwrap()).sum();
    let passed: i64 = points.iter().map(|p| p["passed"].as_i64().unwrap()).sum();
    assert_eq!((total, passed), (RUNS as i64, RUNS as i64 / 2));
    let (status, _) = api
        .get(&format!(
            "/api/v1/test-cases/{test_case_id}/trend?bucket=year"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Two runs compared: what broke, what was fixed, what got slower.
    let (status, compared) = api
        .get(&format!("/api/v1/runs/{}/compare/{}", runs[0], runs[1]))
        .await;
    assert_eq!(status, StatusCode::OK, "{compared}");
    assert_eq!(
        compared["newly_failing"][0]["name"], "test_wobbly",
        "{compared}"
    );
    assert_eq!(compared["newly_failing"][0]["test_id"], json!(expected_id));
    assert_eq!(compared["fixed"], json!([]));
    let change = &compared["duration_changes"][0];
    assert_eq!(
        (
            change["name"].as_str(),
            change["before_ms"].as_u64(),
            change["after_ms"].as_u64()
        ),
        (Some("test_steady"), Some(10), Some(20)),
        "{compared}"
    );
    assert_eq!(change["relative"], 1.0);
    let (_, back) = api
        .get(&format!("/api/v1/runs/{}/compare/{}", runs[1], runs[2]))
        .await;
    assert_eq!(back["fixed"][0]["name"], "test_wobbly", "{back}");
    let (status, answer) = api
        .get(&format!("/api/v1/runs/{}/compare/{}", runs[0], Uuid::nil()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

    // Quarantined, the flaky test's failure no longer fails a run: it passes, and says so.
    let quarantine_path = format!("/api/v1/tests/{expected_id}/quarantine");
    let body = json!({"reason": "flaky on CI, tracked in LAB-12", "test_case_id": test_case_id});
    let (status, answer) = api
        .send(reqwest::Method::POST, &quarantine_path, Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = api
        .send(
            reqwest::Method::POST,
            &quarantine_path,
            Some(json!({"reason": "x", "test_id": expected_id})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the path names the test: {answer}"
    );
    let (status, answer) = api
        .send(
            reqwest::Method::POST,
            &quarantine_path,
            Some(json!({"reason": "x", "until": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an end already past: {answer}"
    );
    let (status, tests) = wobbly_suite(RUNS + 2);
    assert_eq!(status, "failed");
    let excused = reported_run(&client, (ADMIN, EXEC), test_case_id, status, tests).await;
    let head = lab.store.head().await.unwrap();
    let (_, run) = api
        .get(&format!("/api/v1/runs/{excused}?min_position={head}"))
        .await;
    assert_eq!(run["status"], "passed", "{run}");
    assert_eq!(run["summary"]["quarantined_failed"], 1, "{run}");
    let (_, quarantined) = listed("quarantined=true".into()).await;
    assert_eq!(names(&quarantined), ["test_wobbly"]);
    assert_eq!(quarantined["items"][0]["quarantined"], true);
    let (_, shown) = api.get(&format!("/api/v1/tests/{expected_id}")).await;
    assert_eq!(
        shown["quarantine"]["reason"],
        "flaky on CI, tracked in LAB-12"
    );
    assert_eq!(shown["quarantine"]["by"], ADMIN);
    assert_eq!(
        shown["history"][0]["status"], "failed",
        "its failure is still recorded"
    );

    // Released, it fails runs again; releasing it twice is a conflict.
    let (status, _) = api
        .send(reqwest::Method::DELETE, &quarantine_path, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, answer) = api
        .send(reqwest::Method::DELETE, &quarantine_path, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "not_quarantined");
    let (status, tests) = wobbly_suite(RUNS + 4);
    let failing = reported_run(&client, (ADMIN, EXEC), test_case_id, status, tests).await;
    let head = lab.store.head().await.unwrap();
    let (_, run) = api
        .get(&format!("/api/v1/runs/{failing}?min_position={head}"))
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    let (_, quarantined) = listed("quarantined=true".into()).await;
    assert!(names(&quarantined).is_empty());

    // Rebuilt from the log, the tests read model answers the same.
    let (_, before) = listed("sort=name".into()).await;
    let (_, detail_before) = api.get(&detail_path).await;
    projector.stop().await;
    runledger_projections::rebuild(
        &lab.db.pool,
        &[runledger_readmodel::ReadModel::Tests],
        |_| {},
    )
    .await
    .unwrap();
    let (_, after) = listed("sort=name".into()).await;
    let (_, detail_after) = api.get(&detail_path).await;
    assert_eq!(before, after);
    assert_eq!(detail_before, detail_after);

    shutdown.cancel();
    handler.stop().await;
    lab.cleanup().await;
}
