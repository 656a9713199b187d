//! `POST /api/v1/runs/{run_id}/rerun` against a real handler, projector and gateway: runs whose
//! per-test results are reported as an executor would, then reruns of their failures or of
//! tests by id, whose `run_requested` carries the selection, and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::StatusCode;
use runledger_insights::TestKey;
use runledger_test_support::{TestLab, lab_for_reported_runs, reported_run, wobbly_suite};
use runledger_types::TestCaseId;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const EXEC: &str = "executor:e1";
const ADMIN: &str = common::ADMIN.0;

/// What these tests ask of the gateway.
trait RerunApi {
    async fn rerun(&self, run_id: Uuid, body: Value) -> (StatusCode, Value);
    async fn requested(&self, run_id: &Value, position: &Value) -> Value;
}

impl RerunApi for common::AdminApi {
    async fn rerun(&self, run_id: Uuid, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/v1/runs/{run_id}/rerun");
        self.send(reqwest::Method::POST, &path, Some(body)).await
    }

    /// The `run_requested` of `run_id`, once the read models include `position`.
    async fn requested(&self, run_id: &Value, position: &Value) -> Value {
        let run_id = run_id.as_str().unwrap();
        let path = format!("/api/v1/runs/{run_id}/events?min_position={position}");
        let (status, trail) = self.send(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{trail}");
        assert_eq!(trail["events"][0]["type"], "run_requested", "{trail}");
        trail["events"][0]["data"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_the_failures_carries_them_in_its_run_requested() {
    let lab = TestLab::create().await;
    let _handler = lab.start_handler().await;
    let _projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;
    let shutdown = CancellationToken::new();
    let addr = common::serve_gateway(&lab, &shutdown).await;
    let api = common::AdminApi::at(addr).await;
    let client = lab.client();
    let test_case_id = lab_for_reported_runs(&client, ADMIN, EXEC).await;
    let (status, tests) = wobbly_suite(2);
    assert_eq!(status, "failed");
    let failed = reported_run(&client, (ADMIN, EXEC), test_case_id, status, tests).await;
    let (status, tests) = wobbly_suite(1);
    let passed = reported_run(&client, (ADMIN, EXEC), test_case_id, status, tests).await;
    // The route reads the run's test case from the read models: let them catch up.
    let head = lab.store.head().await.unwrap();
    let path = format!("/api/v1/runs/{passed}?min_position={head}");
    assert_eq!(
        api.send(reqwest::Method::GET, &path, None).await.0,
        StatusCode::OK
    );

    // Refusals: nothing failed, both kinds of selection, an unknown run, an unknown test.
    let (status, answer) = api.rerun(passed, json!({"only": "failed"})).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::CONFLICT, &json!("nothing_to_rerun")),
        "{answer}"
    );
    let steady = TestKey::new(TestCaseId(test_case_id), "tests.test_app", "test_steady")
        .id()
        .0;
    let (status, answer) = api
        .rerun(failed, json!({"only": "failed", "tests": [steady]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, _) = api.rerun(Uuid::now_v7(), json!({"only": "failed"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = api.rerun(failed, json!({"tests": [Uuid::now_v7()]})).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("unknown_test")),
        "{answer}"
    );

    // The failures: the one failing test, by its JUnit names.
    let new_run = Uuid::now_v7();
    let (status, answer) = api
        .rerun(failed, json!({"only": "failed", "run_id": new_run}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["run_id"], json!(new_run));
    assert_eq!(answer["rerun_of"], json!(failed));
    let requested = api.requested(&answer["run_id"], &answer["position"]).await;
    assert_eq!(requested["rerun_of"], json!(failed), "{requested}");
    assert_eq!(
        requested["tests"],
        json!([{"classname": "tests.test_app", "name": "test_wobbly"}])
    );
    assert_eq!(requested["test_case_id"], json!(test_case_id));

    // The new run has not finished: it cannot be rerun yet.
    let (status, answer) = api.rerun(new_run, json!({"only": "failed"})).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::CONFLICT, &json!("run_not_finished")),
        "{answer}"
    );

    // Tests by id, from a run that passed.
    let (status, answer) = api.rerun(passed, json!({"tests": [steady]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let requested = api.requested(&answer["run_id"], &answer["position"]).await;
    assert_eq!(requested["rerun_of"], json!(passed));
    assert_eq!(
        requested["tests"],
        json!([{"classname": "tests.test_app", "name": "test_steady"}])
    );

    // The document describes the route.
    let (_, document) = api
        .send(reqwest::Method::GET, "/api/v1/openapi.json", None)
        .await;
    let route = &document["paths"]["/api/v1/runs/{run_id}/rerun"]["post"];
    assert!(route["responses"]["202"].is_object(), "{route}");
    let body = &document["components"]["schemas"]["RerunBody"];
    assert_eq!(
        body["not"],
        json!({"required": ["only", "tests"]}),
        "{body}"
    );
    assert_eq!(body["properties"]["tests"]["maxItems"], 10_000, "{body}");
    shutdown.cancel();
}
