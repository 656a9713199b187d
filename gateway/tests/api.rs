//! The HTTP API against the real services: a handler, a projector, the gateway on a loopback
//! port, and a real HTTP client. Every route's answers, the 401/403 rules, bad parameters, and
//! keyset paging under concurrent inserts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::{Client, Method, StatusCode};
use runledger_test_support::{CommandClient, RunningHandler, RunningProjector, TestLab};
use serde_json::{Value, json};
use std::collections::HashSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ADMIN: &str = "ada";
const MEMBER: &str = "mia";
const OTHER: &str = "otto";

struct Api {
    lab: TestLab,
    handler: RunningHandler,
    projector: RunningProjector,
    shutdown: CancellationToken,
    base: String,
    http: Client,
    test_case_id: Uuid,
}

fn password(user: &str) -> String {
    format!("{user}-password-1")
}

impl Api {
    async fn start() -> Api {
        let lab = TestLab::create().await;
        let handler = lab.start_handler().await;
        let projector = lab.start_projector(1000).await;
        let client = lab.client();
        for (user, role) in [(ADMIN, "admin"), (MEMBER, "member"), (OTHER, "member")] {
            let body = json!({"username": user, "role": role, "password": password(user)});
            assert!(
                client
                    .send("register_user", "bootstrap", body)
                    .await
                    .accepted
            );
        }
        let test_case_id = Uuid::now_v7();
        let test_case = json!({"test_case_id": test_case_id, "name": "unit", "command": "true"});
        assert!(
            client
                .send("define_test_case", ADMIN, test_case)
                .await
                .accepted
        );
        // The projector builds the read models when it starts: wait for them.
        runledger_test_support::eventually(
            std::time::Duration::from_secs(30),
            "the read models",
            || async {
                let models = runledger_readmodel::status(&lab.db.pool).await.ok()?;
                (models.len() == runledger_readmodel::ALL.len()
                    && models.iter().all(|m| m.lag == 0))
                .then_some(())
            },
        )
        .await;
        let shutdown = CancellationToken::new();
        let addr = common::serve_gateway(&lab, &shutdown).await;
        Api {
            lab,
            handler,
            projector,
            shutdown,
            base: format!("http://{addr}"),
            http: Client::new(),
            test_case_id,
        }
    }

    fn client(&self) -> CommandClient {
        self.lab.client()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn login(&self, user: &str) -> String {
        let body = json!({"username": user, "password": password(user)});
        let (status, answer) = self
            .call(Method::POST, "/api/v1/tokens", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["token"].as_str().unwrap().to_owned()
    }

    /// Starts a run as the token's user; returns its id and the outcome's position.
    async fn start_run(&self, token: &str) -> (Uuid, i64) {
        let body = json!({"test_case_id": self.test_case_id});
        let (status, answer) = self
            .call(Method::POST, "/api/v1/runs", Some(token), Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let run_id = answer["run_id"].as_str().unwrap().parse().unwrap();
        (run_id, answer["position"].as_i64().unwrap())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.projector.stop().await;
        self.handler.stop().await;
        self.lab.cleanup().await;
    }
}

fn assert_error(status: StatusCode, answer: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert!(
        !answer["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_health_and_the_401_rules() {
    let api = Api::start().await;
    let (status, answer) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let (status, answer) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let protected = [
        (Method::GET, "/api/v1/runs".to_owned()),
        (Method::POST, "/api/v1/runs".to_owned()),
        (Method::GET, format!("/api/v1/runs/{}", Uuid::nil())),
        (Method::GET, format!("/api/v1/runs/{}/log", Uuid::nil())),
        (Method::GET, format!("/api/v1/runs/{}/events", Uuid::nil())),
        (Method::POST, format!("/api/v1/runs/{}/cancel", Uuid::nil())),
        (Method::GET, "/api/v1/venvs".to_owned()),
        (Method::GET, "/api/v1/machines".to_owned()),
        (Method::GET, "/api/v1/test-cases".to_owned()),
        (Method::DELETE, "/api/v1/tokens/current".to_owned()),
        (Method::GET, "/api/v1/queue".to_owned()),
        (Method::GET, "/api/v1/me".to_owned()),
        (Method::GET, "/api/v1/events/stream".to_owned()),
        (Method::POST, "/api/v1/users".to_owned()),
        (Method::POST, "/api/v1/machines".to_owned()),
        (Method::PATCH, format!("/api/v1/machines/{}", Uuid::nil())),
        (Method::DELETE, format!("/api/v1/machines/{}", Uuid::nil())),
        (Method::POST, "/api/v1/venvs".to_owned()),
        (Method::DELETE, format!("/api/v1/venvs/{}", Uuid::nil())),
        (Method::POST, "/api/v1/test-cases".to_owned()),
    ];
    for (method, path) in &protected {
        let (status, answer) = api.call(method.clone(), path, None, None).await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
        let (status, answer) = api
            .call(method.clone(), path, Some("rl_not-a-token"), None)
            .await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }

    // Wrong passwords and unknown users get the same answer; then the limit.
    let wrong = json!({"username": MEMBER, "password": "nope"});
    let (status, answer) = api
        .call(Method::POST, "/api/v1/tokens", None, Some(wrong.clone()))
        .await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
    let nobody = json!({"username": "nobody", "password": "nope"});
    let (status, answer) = api
        .call(Method::POST, "/api/v1/tokens", None, Some(nobody))
        .await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, answer) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            None,
            Some(json!({"user": "x"})),
        )
        .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");

    let token = api.login(MEMBER).await;
    let (status, _) = api.get("/api/v1/runs", &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(Method::DELETE, "/api/v1/tokens/current", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, answer) = api.get("/api/v1/runs", &token).await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");

    for _ in 0..5 {
        api.call(Method::POST, "/api/v1/tokens", None, Some(wrong.clone()))
            .await;
    }
    let right = json!({"username": MEMBER, "password": password(MEMBER)});
    let (status, answer) = api
        .call(Method::POST, "/api/v1/tokens", None, Some(right))
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_logins",
    );
    // Other users are not locked out.
    api.login(ADMIN).await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_started_read_cancelled_and_their_errors_are_4xx() {
    let api = Api::start().await;
    let mia = api.login(MEMBER).await;
    let otto = api.login(OTHER).await;
    let (run_id, position) = api.start_run(&mia).await;

    let (status, run) = api
        .get(
            &format!("/api/v1/runs/{run_id}?min_position={position}"),
            &mia,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "queued");
    assert_eq!(run["user"], MEMBER);
    assert_eq!(run["test_case_name"], "unit");
    assert_eq!(run["queue_reason"], "no_matching_machine", "{run}");
    assert_eq!(run["tests"], json!([]));
    let (status, page) = api.get("/api/v1/runs?status=queued", &otto).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["run_id"], json!(run_id), "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    let (status, trail) = api
        .get(&format!("/api/v1/runs/{run_id}/events"), &otto)
        .await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["run_requested", "run_queued"]);
    assert_eq!(trail["events"][0]["actor"], MEMBER);
    let response = api
        .http
        .get(format!("{}/api/v1/runs/{run_id}/log", api.base))
        .bearer_auth(&otto)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.text().await.unwrap(), "");

    // Members cancel only their own runs.
    let cancel = format!("/api/v1/runs/{run_id}/cancel");
    let (status, answer) = api
        .call(
            Method::POST,
            &cancel,
            Some(&otto),
            Some(json!({"reason": "mine now"})),
        )
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = api
        .call(
            Method::POST,
            &cancel,
            Some(&mia),
            Some(json!({"reason": "not needed"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let position = answer["position"].as_i64().unwrap();
    let (_, run) = api
        .get(
            &format!("/api/v1/runs/{run_id}?min_position={position}"),
            &mia,
        )
        .await;
    assert_eq!(run["status"], "cancelled", "{run}");
    let (status, answer) = api.call(Method::POST, &cancel, Some(&mia), None).await;
    assert_error(status, &answer, StatusCode::CONFLICT, "run_finished");

    // Bad input: a 4xx with a message, every time.
    let unknown = json!({"test_case_id": Uuid::nil()});
    let (status, answer) = api
        .call(Method::POST, "/api/v1/runs", Some(&mia), Some(unknown))
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "unknown_test_case");
    let junk = api
        .http
        .post(format!("{}/api/v1/runs", api.base))
        .bearer_auth(&mia)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
    let extra = json!({"test_case_id": api.test_case_id, "colour": "red"});
    let (status, answer) = api
        .call(Method::POST, "/api/v1/runs", Some(&mia), Some(extra))
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_payload",
    );
    for path in [
        "/api/v1/runs/not-a-uuid".to_owned(),
        "/api/v1/runs/not-a-uuid/log".to_owned(),
        "/api/v1/runs?sort=colour".to_owned(),
        "/api/v1/runs?limit=0".to_owned(),
        "/api/v1/runs?limit=501".to_owned(),
        "/api/v1/runs?limit=ten".to_owned(),
        "/api/v1/runs?status=sleeping".to_owned(),
        "/api/v1/runs?machine_id=x".to_owned(),
        "/api/v1/runs?since=yesterday".to_owned(),
        "/api/v1/runs?cursor=abc".to_owned(),
        "/api/v1/runs?colour=red".to_owned(),
        format!("/api/v1/runs/{run_id}/log?from=-1"),
        format!("/api/v1/runs/{run_id}?junk=1"),
    ] {
        let (status, answer) = api.get(&path, &mia).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (status, answer) = api
        .get(&format!("/api/v1/runs/{}", Uuid::nil()), &mia)
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    // Just over the limit: the unread rest is small, so the client has sent it all before the
    // server answers and closes (a far larger body can meet a reset instead of the answer).
    let huge = json!({"test_case_id": api.test_case_id,
                      "env": {"BIG": "x".repeat((4 << 20) + (64 << 10))}});
    let (status, _) = api
        .call(Method::POST, "/api/v1/runs", Some(&mia), Some(huge))
        .await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "bodies over 4 MiB are refused"
    );
    let (status, answer) = api.get("/api/v1/nothing-here", &mia).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");

    for path in ["/api/v1/venvs", "/api/v1/machines", "/api/v1/test-cases"] {
        let (status, answer) = api.get(path, &mia).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        assert!(answer.is_array(), "{path}: {answer}");
    }
    let (_, cases) = api.get("/api/v1/test-cases", &mia).await;
    assert_eq!(cases[0]["test_case_id"], json!(api.test_case_id));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_neither_repeats_nor_skips_under_concurrent_inserts() {
    let api = Api::start().await;
    let mia = api.login(MEMBER).await;
    let mut started = Vec::new();
    let mut position = 0;
    for _ in 0..7 {
        let (run_id, at) = api.start_run(&mia).await;
        started.push(run_id);
        position = at;
    }
    let client = api.client();
    for sort in ["queued_at", "-queued_at", "started_at", "-duration"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/runs?sort={sort}&limit=3&min_position={position}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, page) = api.get(&path, &mia).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for item in page["items"].as_array().unwrap() {
                seen.push(item["run_id"].as_str().unwrap().parse::<Uuid>().unwrap());
            }
            // A run started between pages must not disturb the pages to come.
            let run_id = Uuid::now_v7();
            let start = json!({"run_id": run_id, "test_case_id": api.test_case_id});
            assert!(client.send("start_run", MEMBER, start).await.accepted);
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: HashSet<Uuid> = seen.iter().copied().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{sort}: a run came twice: {seen:?}"
        );
        for run_id in &started {
            assert!(unique.contains(run_id), "{sort}: run {run_id} was skipped");
        }
        if sort == "queued_at" {
            let order: Vec<Uuid> = seen
                .iter()
                .copied()
                .filter(|id| started.contains(id))
                .collect();
            assert_eq!(order, started, "ascending request order");
        }
    }
    api.stop().await;
}

/// `(event, id, data)` of each Server-Sent Event in `body`.
fn sse_events(body: &str) -> Vec<(String, Option<String>, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    event = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = serde_json::from_str(value.trim()).ok();
                }
            }
            Some((event?, id, data?))
        })
        .collect()
}

/// A run on a `local` machine, started by the member and reported started by `EXEC`; returns
/// the run and the member's token.
async fn a_running_run(api: &Api) -> (Uuid, String) {
    let client = api.client();
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "here", "host": "local",
                         "username": "runner"});
    assert!(
        client
            .send("register_machine", ADMIN, machine)
            .await
            .accepted
    );
    let venv_id = Uuid::now_v7();
    let venv = json!({"venv_id": venv_id, "machine_id": machine_id, "name": "v"});
    assert!(client.send("add_venv", ADMIN, venv).await.accepted);
    let provisioned = json!({"venv_id": venv_id});
    assert!(
        client
            .send("report_venv_provisioned", EXEC, provisioned)
            .await
            .accepted
    );
    let mia = api.login(MEMBER).await;
    let (run_id, _) = api.start_run(&mia).await;
    assert!(
        client
            .send("report_run_started", EXEC, json!({"run_id": run_id}))
            .await
            .accepted
    );
    (run_id, mia)
}

/// The executor the tests report as.
const EXEC: &str = "executor:e1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_streams_live_resumes_from_last_event_id_and_ends_with_the_status() {
    let api = Api::start().await;
    let client = api.client();
    let exec = EXEC;
    let (run_id, mia) = a_running_run(&api).await;
    let output = |seq: u64, text: &str| json!({"run_id": run_id, "seq": seq, "stream": "stdout", "text": text});
    for (seq, text) in [(1, "one\n"), (2, "two\n")] {
        assert!(
            client
                .send("report_run_output", exec, output(seq, text))
                .await
                .accepted
        );
    }

    let url = format!("{}/api/v1/runs/{run_id}/log", api.base);
    let live = {
        let request = api
            .http
            .get(&url)
            .bearer_auth(&mia)
            .header("accept", "text/event-stream");
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/event-stream")
            );
            response.text().await.unwrap()
        })
    };
    // The stream has sent the history once the live client is connected; then more arrives.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        client
            .send("report_run_output", exec, output(3, "three\n"))
            .await
            .accepted
    );
    let finished = json!({"run_id": run_id, "status": "passed", "exit_code": 0});
    let outcome = client.send("report_run_finished", exec, finished).await;
    assert!(outcome.accepted);
    let end = outcome.events.iter().map(|e| e.position).max().unwrap();
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), live)
        .await
        .expect("the stream ends with the run")
        .unwrap();
    let events = sse_events(&body);
    let texts: Vec<(&str, Option<&str>, &str)> = events
        .iter()
        .map(|(event, id, data)| {
            (
                event.as_str(),
                id.as_deref(),
                data["text"]
                    .as_str()
                    .or(data["status"].as_str())
                    .unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("output", Some("1"), "one\n"),
            ("output", Some("2"), "two\n"),
            ("output", Some("3"), "three\n"),
            ("finished", None, "passed"),
        ],
        "{body}"
    );

    // Resumed after chunk 2: the rest, and the end.
    let response = api
        .http
        .get(&url)
        .bearer_auth(&mia)
        .header("accept", "text/event-stream")
        .header("last-event-id", "2")
        .send()
        .await
        .unwrap();
    let events = sse_events(&response.text().await.unwrap());
    let ids: Vec<Option<String>> = events.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(ids, [Some("3".to_owned()), None]);
    let bad = api
        .http
        .get(&url)
        .bearer_auth(&mia)
        .header("accept", "text/event-stream")
        .header("last-event-id", "three")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // The plain log has it all, from any byte.
    let (status, text) = api
        .get(
            &format!("/api/v1/runs/{run_id}/log?min_position={end}"),
            &mia,
        )
        .await;
    assert_eq!((status, text), (StatusCode::OK, json!("one\ntwo\nthree\n")));
    let (_, text) = api
        .get(&format!("/api/v1/runs/{run_id}/log?from=5"), &mia)
        .await;
    assert_eq!(text, json!("wo\nthree\n"));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_is_managed_over_http_by_role_and_ownership() {
    let api = Api::start().await;
    let ada = api.login(ADMIN).await;
    let mia = api.login(MEMBER).await;
    let otto = api.login(OTHER).await;
    let post = |path: &'static str, token: String, body: Value| {
        let api = &api;
        async move { api.call(Method::POST, path, Some(&token), Some(body)).await }
    };

    // Users: admins only; a taken name is a conflict.
    let user = json!({"username": "newbie", "role": "member", "password": password("newbie")});
    let (status, answer) = post("/api/v1/users", mia.clone(), user.clone()).await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = post("/api/v1/users", ada.clone(), user.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["username"], "newbie");
    let (status, answer) = post("/api/v1/users", ada.clone(), user).await;
    assert_error(status, &answer, StatusCode::CONFLICT, "user_exists");
    api.login("newbie").await;

    // Machines: members register their own; secrets never come back.
    let machine = json!({"name": "mias-box", "host": "127.0.0.1", "port": 22, "os": "linux",
                         "username": "mia", "password": "hunter2-machine", "labels": ["gpu"]});
    let (status, answer) = post("/api/v1/machines", mia.clone(), machine).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let machine_id = answer["machine_id"].as_str().unwrap().to_owned();
    let position = answer["position"].as_i64().unwrap();
    let (_, machines) = api
        .get(&format!("/api/v1/machines?min_position={position}"), &otto)
        .await;
    assert_eq!(machines[0]["machine_id"], json!(machine_id), "{machines}");
    assert_eq!(machines[0]["has_password"], true);
    assert!(!machines.to_string().contains("hunter2"), "{machines}");
    let (status, answer) = post("/api/v1/machines", mia.clone(), json!({"name": 7})).await;
    assert_error(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_payload",
    );

    // Venvs on it: its owner may; another member may not.
    let venv = json!({"machine_id": machine_id, "name": "py3"});
    let (status, answer) = post("/api/v1/venvs", otto.clone(), venv.clone()).await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = post("/api/v1/venvs", mia.clone(), venv).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let venv_id = answer["venv_id"].as_str().unwrap().to_owned();
    let venv_path = format!("/api/v1/venvs/{venv_id}");
    let (status, answer) = api.call(Method::DELETE, &venv_path, Some(&mia), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    // Updating and retiring: the owner or an admin.
    let machine_path = format!("/api/v1/machines/{machine_id}");
    let rename = json!({"name": "mias-big-box"});
    let (status, answer) = api
        .call(
            Method::PATCH,
            &machine_path,
            Some(&otto),
            Some(rename.clone()),
        )
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = api
        .call(Method::PATCH, &machine_path, Some(&mia), Some(rename))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = api
        .call(Method::DELETE, &machine_path, Some(&otto), None)
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = api
        .call(Method::DELETE, &machine_path, Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = api
        .call(Method::DELETE, "/api/v1/machines/nope", Some(&ada), None)
        .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");

    // Test cases: admins only.
    let case = json!({"name": "smoke", "command": "pytest -q", "retries": 1});
    let (status, answer) = post("/api/v1/test-cases", mia.clone(), case.clone()).await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = post("/api/v1/test-cases", ada.clone(), case).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = post(
        "/api/v1/test-cases",
        ada.clone(),
        json!({"test_case_id": 5}),
    )
    .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let api = Api::start().await;
    let (status, spec) = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{spec}");
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/tokens", "post"),
        ("/api/v1/tokens/current", "delete"),
        ("/api/v1/runs", "get"),
        ("/api/v1/runs", "post"),
        ("/api/v1/runs/{run_id}", "get"),
        ("/api/v1/runs/{run_id}/log", "get"),
        ("/api/v1/runs/{run_id}/events", "get"),
        ("/api/v1/runs/{run_id}/cancel", "post"),
        ("/api/v1/venvs", "get"),
        ("/api/v1/machines", "get"),
        ("/api/v1/machines/{machine_id}", "patch"),
        ("/api/v1/test-cases", "post"),
        ("/api/v1/users/{username}/disable", "post"),
        ("/api/v1/users/{username}/password", "put"),
        ("/api/v1/users/{username}/tokens", "delete"),
        ("/healthz", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    assert!(spec["components"]["schemas"]["RunView"]["properties"]["error_code"].is_object());
    let (status, _) = api.call(Method::GET, "/api/docs", None, None).await;
    assert_eq!(status, StatusCode::OK);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_status_changes_stream_live() {
    use futures::StreamExt;
    let api = Api::start().await;
    let mia = api.login(MEMBER).await;
    let (status, me) = api.get("/api/v1/me", &mia).await;
    assert_eq!(
        (status, me),
        (
            StatusCode::OK,
            json!({"username": MEMBER, "role": "member"})
        )
    );
    let response = api
        .http
        .get(format!("{}/api/v1/events/stream", api.base))
        .bearer_auth(&mia)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let (run_id, position) = api.start_run(&mia).await;
    let mut seen = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            let queued = sse_events(&seen).into_iter().find(|(event, _, data)| {
                event == "run" && data["run_id"] == json!(run_id) && data["status"] == "queued"
            });
            if queued.is_some() {
                return queued;
            }
        }
        None
    })
    .await;
    assert!(matches!(found, Ok(Some(_))), "{seen}");
    let (status, queue) = api
        .get(&format!("/api/v1/queue?min_position={position}"), &mia)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue[0]["run_id"], json!(run_id), "{queue}");
    assert_eq!(queue[0]["reason"], "no_matching_machine", "{queue}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_commands_and_finished_runs() {
    let api = Api::start().await;
    let mia = api.login(MEMBER).await;
    let (run_id, position) = api.start_run(&mia).await;
    let cancel = format!("/api/v1/runs/{run_id}/cancel");
    let (status, _) = api.call(Method::POST, &cancel, Some(&mia), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = api.call(Method::POST, &cancel, Some(&mia), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .get(&format!("/api/v1/runs?min_position={position}"), &mia)
        .await;
    assert_eq!(status, StatusCode::OK);
    let client = api.client();
    let machine_id = Uuid::now_v7();
    let machine =
        json!({"machine_id": machine_id, "name": "box-1", "host": "local", "username": "r"});
    assert!(
        client
            .send("register_machine", ADMIN, machine)
            .await
            .accepted
    );
    let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id, "name": "v1"});
    assert!(client.send("add_venv", ADMIN, venv).await.accepted);
    // The pool gauges are read from the read models when scraped.
    runledger_test_support::eventually(
        std::time::Duration::from_secs(10),
        "the pool gauge",
        || async {
            let (_, text) = api.call(Method::GET, "/metrics", None, None).await;
            text.as_str()?
                .contains(r#"runledger_venvs{machine="box-1",status="provisioning"} 1"#)
                .then_some(())
        },
    )
    .await;
    // No token needed, as the contract says.
    let (status, text) = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    for series in [
        r#"runledger_http_requests_total{method="GET",route="/api/v1/runs",status="200"}"#,
        r#"runledger_http_requests_total{method="POST",route="/api/v1/runs/{run_id}/cancel",status="409"}"#,
        r#"runledger_commands_total{type="start_run",outcome="accepted"}"#,
        r#"runledger_commands_rejected_total{type="cancel_run",code="run_finished"}"#,
        r#"runledger_runs_finished_total{status="cancelled"}"#,
        "runledger_http_request_seconds",
        "runledger_append_seconds",
        "runledger_log_head",
        "runledger_projection_lag_events",
        "runledger_projected_events_total",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    api.stop().await;
}

/// A token revoked through one gateway process stops working on another at once, though the
/// other had checked (and cached) it just before: well within the cache's 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_gateway_stops_working_on_the_others() {
    let api = Api::start().await;
    let other = common::serve_gateway(&api.lab, &api.shutdown).await;
    let other_runs = format!("http://{other}/api/v1/runs");
    let token = api.login(MEMBER).await;
    let on_other = || async {
        let response = api
            .http
            .get(&other_runs)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        response.status()
    };
    assert_eq!(on_other().await, StatusCode::OK);
    let (status, _) = api
        .call(Method::DELETE, "/api/v1/tokens/current", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let waited = std::time::Instant::now();
    runledger_test_support::eventually(
        std::time::Duration::from_secs(5),
        "the other gateway refusing the revoked token",
        || async { (on_other().await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    assert!(
        waited.elapsed() < runledger_gateway::auth::TOKEN_CACHE_TTL,
        "refused only after {:?}",
        waited.elapsed()
    );
    api.stop().await;
}

/// Reports chunks `1..=chunks` of `run_id`'s output (`text` each) as `EXEC`, then its end.
async fn report_output_and_finish(
    api: &Api,
    run_id: Uuid,
    chunks: u64,
    text: impl Fn(u64) -> String,
) {
    let client = api.client();
    for seq in 1..=chunks {
        let chunk = json!({"run_id": run_id, "seq": seq, "stream": "stdout", "text": text(seq)});
        assert!(client.send("report_run_output", EXEC, chunk).await.accepted);
        if seq % 100 == 0 {
            // A slow machine takes longer than the executor lease for many chunks: beat.
            let executor = EXEC.trim_start_matches("executor:");
            client
                .beat(executor, vec![runledger_types::RunId(run_id)])
                .await;
        }
    }
    let finished = json!({"run_id": run_id, "status": "passed", "exit_code": 0});
    assert!(
        client
            .send("report_run_finished", EXEC, finished)
            .await
            .accepted
    );
}

/// `run_id`'s live log as Server-Sent Events, once the answer's headers have come.
async fn open_log_stream(api: &Api, run_id: Uuid, token: &str) -> reqwest::Response {
    let response = api
        .http
        .get(format!("{}/api/v1/runs/{run_id}/log", api.base))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// Reads the stream to its end (within `limit`): chunks `1..=chunks` in order, then `finished`.
async fn assert_whole_log(response: reqwest::Response, chunks: u64, limit: std::time::Duration) {
    let body = tokio::time::timeout(limit, response.text())
        .await
        .expect("the stream ends with the run")
        .unwrap();
    let events = sse_events(&body);
    let seqs: Vec<u64> = events
        .iter()
        .filter(|(event, _, _)| event == "output")
        .map(|(_, _, data)| data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=chunks).collect::<Vec<_>>());
    assert_eq!(
        events.last().map(|(event, _, _)| event.as_str()),
        Some("finished")
    );
}

/// A log streamed from the start reads a long history page by page (more chunks than a page),
/// in order, without a gap, and ends with the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_log_streams_whole_and_in_order() {
    let api = Api::start().await;
    let (run_id, mia) = a_running_run(&api).await;
    report_output_and_finish(&api, run_id, 300, |seq| format!("line {seq}\n")).await;
    let response = open_log_stream(&api, run_id, &mia).await;
    assert_whole_log(response, 300, std::time::Duration::from_secs(20)).await;
    api.stop().await;
}

/// A client that reads nothing while much more output arrives than its stream buffers (the
/// socket, the stream's channel and the hub's 256 events) still gets every chunk, in order,
/// once it reads: the stream, fallen behind the hub, read what it missed from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_client_loses_nothing() {
    let api = Api::start().await;
    let (run_id, mia) = a_running_run(&api).await;
    let response = open_log_stream(&api, run_id, &mia).await;
    // 1,000 chunks of 32 KiB (32 MiB) while the client reads nothing.
    let text = "x".repeat(32 * 1024 - 1) + "\n";
    report_output_and_finish(&api, run_id, 1000, |_| text.clone()).await;
    assert_whole_log(response, 1000, std::time::Duration::from_secs(60)).await;
    api.stop().await;
}

/// A run's audit trail with its output comes page by page: every event once, in order, and
/// the last page says there is no next one.
#[tokio::test]
async fn a_runs_audit_trail_pages() {
    let api = Api::start().await;
    let (run_id, mia) = a_running_run(&api).await;
    report_output_and_finish(&api, run_id, 250, |seq| format!("line {seq}\n")).await;
    let path = format!("/api/v1/runs/{run_id}/events?output=true&limit=100");
    let (mut versions, mut cursor, mut pages) = (Vec::new(), None::<i64>, 0);
    loop {
        let url = match cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.clone(),
        };
        let (status, page) = api.get(&url, &mia).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 100);
        versions.extend(events.iter().map(|e| e["stream_version"].as_i64().unwrap()));
        pages += 1;
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    let outputs = 250;
    assert!(versions.len() > outputs, "{} events", versions.len());
    assert!(
        versions.windows(2).all(|w| w[0] + 1 == w[1]),
        "{versions:?}"
    );
    for limit in ["0", "1001", "x"] {
        let (status, answer) = api
            .get(&format!("/api/v1/runs/{run_id}/events?limit={limit}"), &mia)
            .await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    api.stop().await;
}

/// Per-test results sent in parts ahead of `run_finished` come back whole, in order, in the
/// run's detail.
#[tokio::test]
async fn per_test_results_sent_in_parts_come_back_whole() {
    let api = Api::start().await;
    let (run_id, mia) = a_running_run(&api).await;
    let client = api.client();
    let test = |n: u32| {
        json!({"name": format!("test_{n}"), "classname": "suite",
                               "status": "passed", "duration_ms": 1})
    };
    for part in 1..=3u32 {
        let tests: Vec<Value> = (1..=2).map(|i| test(part * 10 + i)).collect();
        let payload = json!({"run_id": run_id, "part": part, "tests": tests});
        assert!(
            client
                .send("report_run_tests", EXEC, payload)
                .await
                .accepted
        );
    }
    let finished = json!({"run_id": run_id, "status": "passed", "exit_code": 0,
                          "tests": [test(99)]});
    assert!(
        client
            .send("report_run_finished", EXEC, finished)
            .await
            .accepted
    );
    let names = runledger_test_support::eventually(
        std::time::Duration::from_secs(10),
        "the finished run in the read model",
        || async {
            let (_, run) = api.get(&format!("/api/v1/runs/{run_id}"), &mia).await;
            (run["status"] == "passed").then(|| {
                run["tests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
        },
    )
    .await;
    let expected = [
        "test_11", "test_12", "test_21", "test_22", "test_31", "test_32", "test_99",
    ];
    assert_eq!(names, expected);
    api.stop().await;
}
