//! The run group routes against a real handler, projector and gateway, with members reported as
//! an executor would: start a sharded group, watch its members take the one venv in turn, its
//! verdict and merged summary, the listing and its filters, the merged JUnit report,
//! cancellation, and the documented 4xx answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::{Method, StatusCode};
use runledger_test_support::{
    CommandClient, TestLab, lab_for_reported_runs, reported_run, suite_history,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const EXEC: &str = "executor:e1";
const ADMIN: &str = common::ADMIN.0;

/// A group's detail once the read models include `position`.
async fn group(api: &common::AdminApi, group_id: &Value, position: i64) -> Value {
    let path = format!(
        "/api/v1/groups/{}?min_position={position}",
        group_id.as_str().unwrap()
    );
    let (status, body) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Ends member `member` (as the detail shows it) as the executor would: started, then
/// finished with `status` and a result per selected test.
async fn report_member(client: &CommandClient, member: &Value, status: &str) -> i64 {
    let run_id = member["run_id"].clone();
    client
        .accept("report_run_started", EXEC, json!({"run_id": run_id}))
        .await;
    let tests: Vec<Value> = member["selected_tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            json!({"classname": t["classname"], "name": t["name"], "status": status,
                   "duration_ms": 10})
        })
        .collect();
    let count = tests.len();
    let (passed, failed) = if status == "passed" {
        (count, 0)
    } else {
        (0, count)
    };
    let finished = json!({"run_id": run_id, "status": status, "exit_code": 0,
                          "summary": {"passed": passed, "failed": failed, "skipped": 0, "errors": 0},
                          "tests": tests});
    let outcome = client.accept("report_run_finished", EXEC, finished).await;
    outcome.events.iter().map(|e| e.position).max().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_group_over_the_api_from_start_to_merged_report() {
    let lab = TestLab::create().await;
    let _handler = lab.start_handler().await;
    let _projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;
    let shutdown = CancellationToken::new();
    let addr = common::serve_gateway(&lab, &shutdown).await;
    let api = common::AdminApi::at(addr).await;
    let client = lab.client();
    let test_case_id = lab_for_reported_runs(&client, ADMIN, EXEC).await;

    // A command other than pytest cannot be split before its suite ran whole: nothing would
    // place its tests.
    let make = Uuid::now_v7();
    let test_case = json!({"test_case_id": make, "name": "make", "command": "make test"});
    client.accept("define_test_case", ADMIN, test_case).await;
    let body = json!({"test_case_id": make, "shards": 2});
    let (status, answer) = api.send(Method::POST, "/api/v1/groups", Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "no_test_history");
    let body = json!({"test_case_id": test_case_id, "shards": 2});

    let tests = json!([
        {"classname": "tests.test_app", "name": "test_long", "status": "passed", "duration_ms": 3000},
        {"classname": "tests.test_app", "name": "test_mid", "status": "passed", "duration_ms": 2000},
        {"classname": "tests.test_app", "name": "test_short", "status": "passed", "duration_ms": 1000},
    ]);
    reported_run(&client, (ADMIN, EXEC), test_case_id, "passed", tests).await;

    let (status, accepted) = api.send(Method::POST, "/api/v1/groups", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let group_id = accepted["group_id"].clone();
    let detail = group(&api, &group_id, accepted["position"].as_i64().unwrap()).await;
    assert_eq!(detail["status"], "running");
    assert_eq!(detail["kind"], "shards");
    assert_eq!(detail["ideal_ms"], 3000);
    let members = detail["member_runs"].as_array().unwrap().clone();
    assert_eq!(members.len(), 2);
    // Longest first onto the least loaded: {long} and {mid, short}.
    assert_eq!(members[0]["selected_tests"][0]["name"], "test_long");
    assert_eq!(members[1]["tests"], 2);
    assert_eq!(members[1]["predicted_ms"], 3000);
    // One venv: shard 0 holds it, shard 1 waits.
    assert_eq!(members[0]["status"], "assigned");
    assert_eq!(members[1]["status"], "queued");
    let run_path = format!("/api/v1/runs/{}", members[0]["run_id"].as_str().unwrap());
    let (_, run) = api.get(&run_path).await;
    assert_eq!(run["group_id"], group_id);
    assert_eq!(run["shard"], 0);

    report_member(&client, &members[0], "passed").await;
    let position = report_member(&client, &members[1], "failed").await;
    let detail = group(&api, &group_id, position).await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(detail["ended"], 2);
    assert_eq!(detail["summary"]["passed"], 1);
    assert_eq!(detail["summary"]["failed"], 2);
    assert!(detail["duration_ms"].as_i64().is_some());

    let (status, page) = api
        .get(&format!(
            "/api/v1/groups?status=failed&test_case_id={test_case_id}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["group_id"], group_id);
    let (_, none) = api.get("/api/v1/groups?status=passed").await;
    assert_eq!(none["items"], json!([]));

    let junit_path = format!("/api/v1/groups/{}/junit", group_id.as_str().unwrap());
    let (status, _) = api.get(&junit_path).await;
    assert_eq!(status, StatusCode::OK);
    let report = reqwest::Client::new()
        .get(format!("http://{addr}{junit_path}"))
        .bearer_auth(common::admin_token(addr).await)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(report.matches("<testsuite ").count(), 2, "{report}");
    assert_eq!(report.matches("<testcase ").count(), 3, "{report}");
    assert!(
        report.contains("<testsuites name=\"runledger group"),
        "{report}"
    );

    // Cancelling a group ends it; cancelling it again is a conflict.
    let body = json!({"test_case_id": test_case_id, "shards": 3});
    let (_, second) = api.send(Method::POST, "/api/v1/groups", Some(body)).await;
    let cancel_path = format!(
        "/api/v1/groups/{}/cancel",
        second["group_id"].as_str().unwrap()
    );
    let (status, cancelled) = api
        .send(
            Method::POST,
            &cancel_path,
            Some(json!({"reason": "enough"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cancelled}");
    let detail = group(
        &api,
        &second["group_id"],
        cancelled["position"].as_i64().unwrap(),
    )
    .await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    assert_eq!(detail["cancel_reason"], "enough");
    let (status, again) = api.send(Method::POST, &cancel_path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "group_finished");

    shutdown.cancel();
    lab.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_requests_get_documented_answers() {
    let lab = TestLab::create().await;
    let _handler = lab.start_handler().await;
    let _projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;
    let shutdown = CancellationToken::new();
    let addr = common::serve_gateway(&lab, &shutdown).await;
    let api = common::AdminApi::at(addr).await;
    let test_case_id = lab_for_reported_runs(&lab.client(), ADMIN, EXEC).await;

    let cases = [
        (
            json!({"test_case_id": test_case_id}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"test_case_id": test_case_id, "shards": 2, "matrix": {"env": [{"X": "1"}]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"test_case_id": test_case_id, "shards": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"test_case_id": test_case_id, "shards": 65}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"test_case_id": test_case_id, "matrix": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"test_case_id": Uuid::now_v7(), "shards": 2}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"group_id": "nope", "test_case_id": test_case_id}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = api
            .send(Method::POST, "/api/v1/groups", Some(body.clone()))
            .await;
        assert_eq!(status, expected, "{body} → {answer}");
    }
    // Shards of a command other than pytest are given their tests in RUNLEDGER_TESTS: 1,500
    // tests of 85 bytes do not fit in one shard's 100 KiB, and fit in two.
    let make = Uuid::now_v7();
    let test_case = json!({"test_case_id": make, "name": "make", "command": "make test"});
    lab.client()
        .accept("define_test_case", ADMIN, test_case)
        .await;
    let tests: Vec<Value> = (0..1_500)
        .map(|i| {
            json!({"classname": "tests.test_a_module_with_a_long_name", "status": "passed",
                   "name": format!("test_a_rather_descriptive_and_long_name_{i:05}"),
                   "duration_ms": 5})
        })
        .collect();
    suite_history(&lab.client(), (ADMIN, EXEC), make, &tests).await;
    let body = json!({"test_case_id": make, "shards": 1});
    let (status, answer) = api.send(Method::POST, "/api/v1/groups", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["code"], "selection_too_large", "{answer}");
    let body = json!({"test_case_id": make, "shards": 2});
    let (status, answer) = api.send(Method::POST, "/api/v1/groups", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    let (status, _) = api.get("/api/v1/groups/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get(&format!("/api/v1/groups/{}", Uuid::now_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get("/api/v1/groups?cursor=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("/api/v1/groups?status=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("/api/v1/groups?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let cancel = format!("/api/v1/groups/{}/cancel", Uuid::now_v7());
    let (status, answer) = api.send(Method::POST, &cancel, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "unknown_group");

    shutdown.cancel();
    lab.cleanup().await;
}
