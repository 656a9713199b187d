//! The dashboard in a real headless Chromium (Debian's `chromium` and `chromedriver`, driven over
//! WebDriver): log in, start a run, watch it finish with its live log, filter the table. The
//! run is real: an executor in this process runs it on this host (a `local` machine). Run groups
//! (a sharded one and a matrix) are reported by a fake executor, and their pages checked: the
//! timeline, the matrix grid, the merged tests, cancelling from the page. Screenshots go to
//! `target/test-artifacts/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use fantoccini::{Client, ClientBuilder, Locator};
use runledger_executor::{ExecutorSettings, run as run_executor};
use runledger_test_support::{
    CommandClient, TestLab, eventually, lab_for_reported_runs, reported_run, wobbly_suite,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(60);

async fn chromedriver() -> (Child, u16) {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "{CHROMEDRIVER} or {CHROMIUM} is missing: install them with \
         `source scripts/services.sh && ensure_chromium` (Debian's chromium, chromium-driver)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    eventually(
        Duration::from_secs(20),
        "chromedriver listening",
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    (child, port)
}

async fn browser(port: u16) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM,
               "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                        "--disable-gpu", "--window-size=1280,900"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_in_start_a_run_watch_it_finish_and_filter_the_table() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let client = lab.client();
    let shutdown = CancellationToken::new();
    common::register_admin(&lab).await;
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "this-host", "host": "local",
                         "username": "runner"});
    assert!(
        client
            .send("register_machine", "ada", machine)
            .await
            .accepted
    );
    let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id,
                      "name": format!("browser-{}", &Uuid::now_v7().simple().to_string()[20..]),
                      "python": "/usr/bin/python3"});
    assert!(client.send("add_venv", "ada", venv).await.accepted);
    let test_case = json!({"test_case_id": Uuid::now_v7(), "name": "answer",
                           "command": "echo computing; python -c 'print(6 * 7)'"});
    assert!(
        client
            .send("define_test_case", "ada", test_case)
            .await
            .accepted
    );
    let mut settings =
        ExecutorSettings::new("browser", lab.nats.names.clone(), lab.keyring.clone());
    settings.allow_local = true;
    let executor = tokio::spawn(run_executor(
        lab.nats.client.clone(),
        settings,
        shutdown.clone(),
    ));

    let addr = common::serve_gateway(&lab, &shutdown).await;

    let (_driver, port) = chromedriver().await;
    let web = browser(port).await;
    web.goto(&format!("http://{addr}/")).await.unwrap();
    log_in(&web).await;
    eventually(WAIT, "the test case in the start form", || async {
        let options = text_of(&web, "#start-test-case").await;
        options.contains("answer").then_some(())
    })
    .await;
    assert!(text_of(&web, "#who").await.contains("ada"));
    web.find(Locator::Css("#start-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The run's page: it provisions, runs and passes, with its log streamed in.
    let finished = eventually(WAIT, "the run to pass on its page", || async {
        let facts = text_of(&web, "#run-facts").await;
        facts.contains("passed").then_some(facts)
    })
    .await;
    assert!(finished.contains("this-host"), "{finished}");
    eventually(WAIT, "the live log", || async {
        let log = text_of(&web, "#run-log").await;
        (log.contains("computing") && log.contains("42")).then_some(())
    })
    .await;
    let trail = text_of(&web, "#trail-table").await;
    assert!(trail.contains("run_finished"), "{trail}");
    let run_url = web.current_url().await.unwrap();
    let run_id = run_url
        .fragment()
        .unwrap()
        .trim_start_matches("run/")
        .to_owned();
    std::fs::write(
        artifacts().join("dashboard-run.png"),
        web.screenshot().await.unwrap(),
    )
    .unwrap();

    // The runs table, filtered to passed runs, shows it; filtered to failed, does not.
    web.goto(&format!("http://{addr}/#runs")).await.unwrap();
    let select = |status: &'static str| {
        let web = &web;
        async move {
            web.find(Locator::Css("#filter-status"))
                .await
                .unwrap()
                .select_by_value(status)
                .await
                .unwrap();
            web.find(Locator::Css("#apply-filters"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };
    select("passed").await;
    let short = &run_id[..8];
    eventually(WAIT, "the passed run in the table", || async {
        let table = text_of(&web, "#runs-table tbody").await;
        table.contains(short).then_some(())
    })
    .await;
    std::fs::write(
        artifacts().join("dashboard-runs.png"),
        web.screenshot().await.unwrap(),
    )
    .unwrap();
    select("failed").await;
    eventually(WAIT, "an empty table of failed runs", || async {
        let table = text_of(&web, "#runs-table tbody").await;
        (!table.contains(short)).then_some(())
    })
    .await;

    // Logging out revokes the session: a cookie-authenticated DELETE, which the gateway takes
    // only as JSON. After a reload the dashboard asks to log in again.
    web.find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    login_form_shown(&web).await;
    web.goto(&format!("http://{addr}/")).await.unwrap();
    login_form_shown(&web).await;

    web.close().await.unwrap();
    shutdown.cancel();
    let _ = executor.await;
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

/// Waits until the login form is visible.
async fn login_form_shown(web: &Client) {
    eventually(WAIT, "the login form", || async {
        let form = web.find(Locator::Css("#login-form")).await.ok()?;
        form.is_displayed().await.ok()?.then_some(())
    })
    .await;
}

/// Logs in as the admin of `common::ADMIN` through the login form.
async fn log_in(web: &Client) {
    login_form_shown(web).await;
    let (username, password) = common::ADMIN;
    for (field, value) in [("#username", username), ("#password", password)] {
        web.find(Locator::Css(field))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    web.find(Locator::Css("#login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(WAIT, "the session", || async {
        text_of(web, "#who").await.contains(username).then_some(())
    })
    .await;
}

/// The points a chart element was drawn with (`data-points`), once its canvas is there.
async fn chart_points(web: &Client, css: &str) -> serde_json::Value {
    eventually(WAIT, "a drawn chart", || async {
        web.find(Locator::Css(&format!("{css} canvas")))
            .await
            .ok()?;
        let points = web
            .execute(
                "return document.querySelector(arguments[0]).dataset.points;",
                vec![json!(css)],
            )
            .await
            .ok()?;
        serde_json::from_str(points.as_str()?).ok()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_test_case_charts_its_trend_and_a_flaky_test_shows_why_and_is_quarantined() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;
    let shutdown = CancellationToken::new();
    let addr = common::serve_gateway(&lab, &shutdown).await;
    let token = common::admin_token(addr).await;
    let client = lab.client();
    let admin = common::ADMIN.0;
    let test_case_id = lab_for_reported_runs(&client, admin, "executor:e1").await;
    let mut runs = Vec::new();
    for n in 1..=6 {
        let (status, tests) = wobbly_suite(n);
        runs.push(reported_run(&client, (admin, "executor:e1"), test_case_id, status, tests).await);
    }
    let head = lab.store.head().await.unwrap();
    let http = reqwest::Client::new();
    let trend: serde_json::Value = http
        .get(format!(
            "http://{addr}/api/v1/test-cases/{test_case_id}/trend?bucket=day&min_position={head}"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let (_driver, port) = chromedriver().await;
    let web = browser(port).await;
    web.goto(&format!("http://{addr}/")).await.unwrap();
    log_in(&web).await;

    // The test case's page draws the API's trend: one point per day, the pass rate of each.
    web.goto(&format!("http://{addr}/#test-case/{test_case_id}"))
        .await
        .unwrap();
    let drawn = chart_points(&web, "#pass-rate-chart").await;
    let points = trend["points"].as_array().unwrap();
    let expected_x: Vec<i64> = points
        .iter()
        .map(|p| {
            chrono::DateTime::parse_from_rfc3339(p["bucket"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    let expected_y: Vec<f64> = points
        .iter()
        .map(|p| p["pass_rate"].as_f64().unwrap())
        .collect();
    assert_eq!(drawn["x"], json!(expected_x));
    assert_eq!(drawn["series"][0]["values"], json!(expected_y));
    assert_eq!(expected_y, [0.5]);
    chart_points(&web, "#run-duration-chart").await;
    let shot = web.screenshot().await.unwrap();
    std::fs::write(artifacts().join("test-case-trend.png"), shot).unwrap();

    // The flaky tests: the one that fails every other run, and why.
    web.goto(&format!("http://{addr}/#flaky")).await.unwrap();
    let listed = eventually(WAIT, "the flaky list", || async {
        let rows = text_of(&web, "#tests-list tbody").await;
        rows.contains("test_wobbly").then_some(rows)
    })
    .await;
    assert!(!listed.contains("test_steady"), "{listed}");
    web.find(Locator::LinkText("tests.test_app::test_wobbly"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let facts = eventually(WAIT, "the test's page", || async {
        let facts = text_of(&web, "#test-facts").await;
        facts.contains("Flaky").then_some(facts)
    })
    .await;
    assert!(facts.contains("yes, score 1.00"), "{facts}");
    let strip = web.find_all(Locator::Css("#test-strip a")).await.unwrap();
    assert_eq!(strip.len(), 6);
    assert_eq!(
        strip[1].attr("class").await.unwrap().as_deref(),
        Some("r-failed")
    );
    let flips = web
        .find_all(Locator::Css("#test-flips tbody tr"))
        .await
        .unwrap();
    assert_eq!(flips.len(), 5);
    chart_points(&web, "#test-duration-chart").await;

    // Quarantined from its page.
    web.find(Locator::Css("#quarantine-reason"))
        .await
        .unwrap()
        .send_keys("fails every other run; LAB-12")
        .await
        .unwrap();
    web.find(Locator::Css("#quarantine-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let facts = eventually(WAIT, "the quarantine on the page", || async {
        let facts = text_of(&web, "#test-facts").await;
        facts.contains("Quarantined").then_some(facts)
    })
    .await;
    assert!(facts.contains("fails every other run; LAB-12"), "{facts}");
    assert!(facts.contains(&format!("by {admin}")), "{facts}");
    let shot = web.screenshot().await.unwrap();
    std::fs::write(artifacts().join("flaky-test.png"), shot).unwrap();

    // A failed run's page reruns just what failed, and opens the new run.
    let failed = runs[5];
    web.goto(&format!("http://{addr}/#run/{failed}"))
        .await
        .unwrap();
    let button = eventually(WAIT, "the rerun button", || async {
        let button = web.find(Locator::Css("#rerun-failed")).await.ok()?;
        button.is_displayed().await.ok()?.then_some(button)
    })
    .await;
    button.click().await.unwrap();
    let rerun: Uuid = eventually(WAIT, "the new run's page", || async {
        let url = web.current_url().await.ok()?;
        let id = url.fragment()?.strip_prefix("run/")?.parse().ok()?;
        (id != failed).then_some(id)
    })
    .await;
    let requested: serde_json::Value = runledger_test_support::sqlx::query_scalar(
        "SELECT data FROM events WHERE type = 'run_requested' AND data->>'run_id' = $1",
    )
    .bind(rerun.to_string())
    .fetch_one(&lab.db.pool)
    .await
    .unwrap();
    assert_eq!(requested["rerun_of"], json!(failed), "{requested}");
    assert_eq!(
        requested["tests"],
        json!([{"classname": "tests.test_app", "name": "test_wobbly"}]),
        "{requested}"
    );

    web.close().await.unwrap();
    shutdown.cancel();
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}

/// The six tests of the group tests' suite: `test_1` … `test_6`, taking 1 to 6 s in its history.
fn suite_test(i: usize) -> Value {
    json!({"classname": "tests.test_groups", "name": format!("test_{i}")})
}

/// `tests` (`{classname, name}`) with results: `failing` fails, the others pass.
fn results(tests: &[Value], failing: Option<&str>) -> Value {
    tests
        .iter()
        .enumerate()
        .map(|(i, test)| {
            let failed = test["name"].as_str() == failing;
            let mut result = test.clone();
            result["status"] = json!(if failed { "failed" } else { "passed" });
            result["duration_ms"] = json!(100 * (i + 1));
            result["message"] = json!(failed.then_some("assert 1 == 2"));
            result
        })
        .collect()
}

/// Reports `run_id` finished as `executor`, with `tests` and the summary they add up to.
async fn report_finished(client: &CommandClient, executor: &str, run_id: Uuid, tests: Value) {
    let count = |outcome: &str| {
        tests
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == outcome)
            .count()
    };
    let status = if count("failed") > 0 {
        "failed"
    } else {
        "passed"
    };
    let summary = json!({"passed": count("passed"), "failed": count("failed"),
                         "skipped": 0, "errors": 0});
    let finished = json!({"run_id": run_id, "status": status,
                          "exit_code": i32::from(status != "passed"),
                          "summary": summary, "tests": tests});
    client
        .accept("report_run_finished", executor, finished)
        .await;
}

/// The tests a member run was given: its shard's `group_tests_planned` parts, in order.
async fn member_tests(lab: &TestLab, run_id: Uuid) -> Vec<Value> {
    let parts: Vec<Value> = runledger_test_support::sqlx::query_scalar(
        "SELECT part.data->'tests' FROM events member JOIN events part \
           ON part.type = 'group_tests_planned' \
          AND part.data->>'group_id' = member.data->'group'->>'group_id' \
          AND part.data->'shard' = member.data->'group'->'shard' \
         WHERE member.type = 'run_requested' AND member.data->>'run_id' = $1 \
         ORDER BY part.position",
    )
    .bind(run_id.to_string())
    .fetch_all(&lab.db.pool)
    .await
    .unwrap();
    parts
        .into_iter()
        .flat_map(|tests| tests.as_array().cloned().unwrap_or_default())
        .collect()
}

/// Starts a group through the API and reads its members once the read models have them.
async fn start_group(api: &common::AdminApi, body: Value) -> (Uuid, Vec<Uuid>) {
    let (status, accepted) = api
        .send(reqwest::Method::POST, "/api/v1/groups", Some(body))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let group_id: Uuid = accepted["group_id"].as_str().unwrap().parse().unwrap();
    let position = accepted["position"].as_i64().unwrap();
    let (status, group) = api
        .get(&format!(
            "/api/v1/groups/{group_id}?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200, "{group}");
    let members: Vec<Uuid> = group["member_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["status"], "assigned", "{group}");
            m["run_id"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    (group_id, members)
}

/// The `data-status` of each element `css` matches, in order, read at one instant (the page
/// redraws a running group's timeline every second).
async fn statuses(web: &Client, css: &str) -> Vec<String> {
    let found = web
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.dataset.status);",
            vec![json!(css)],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_show_their_timeline_matrix_and_merged_tests_and_cancel_from_the_page() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;
    let shutdown = CancellationToken::new();
    let addr = common::serve_gateway(&lab, &shutdown).await;
    let api = common::AdminApi::at(addr).await;
    let client = lab.client();
    let admin = common::ADMIN.0;
    let executor = "executor:e1";
    let test_case_id = lab_for_reported_runs(&client, admin, executor).await;

    // The history a split needs: the whole suite once, test_i taking i s.
    let suite: Vec<Value> = (1..=6).map(suite_test).collect();
    let history: Vec<Value> = suite
        .iter()
        .enumerate()
        .map(|(i, test)| {
            let mut result = test.clone();
            result["status"] = json!("passed");
            result["duration_ms"] = json!(1000 * (i + 1));
            result
        })
        .collect();
    reported_run(
        &client,
        (admin, executor),
        test_case_id,
        "passed",
        json!(history),
    )
    .await;

    // A machine labelled linux and lab with two venvs of Python 3.11 and two of 3.12.
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "farm", "host": "local",
                         "username": "runner", "labels": ["linux", "lab"]});
    client.accept("register_machine", admin, machine).await;
    for (n, python) in ["3.11.9", "3.11.9", "3.12.3", "3.12.3"].iter().enumerate() {
        let venv_id = Uuid::now_v7();
        let venv =
            json!({"venv_id": venv_id, "machine_id": machine_id, "name": format!("farm{n}")});
        client.accept("add_venv", admin, venv).await;
        let provisioned = json!({"venv_id": venv_id, "python_version": python});
        client
            .accept("report_venv_provisioned", executor, provisioned)
            .await;
    }

    // Three shards: every member gets a venv at once; shard 1's test fails. Each member takes a
    // moment more than the one before, so the timeline has bars to see.
    let (shards_id, shards) =
        start_group(&api, json!({"test_case_id": test_case_id, "shards": 3})).await;
    assert_eq!(shards.len(), 3);
    let mut shard_tests = Vec::new();
    for run_id in &shards {
        client
            .accept("report_run_started", executor, json!({"run_id": run_id}))
            .await;
        shard_tests.push(member_tests(&lab, *run_id).await);
    }
    let mut all_tests: Vec<String> = Vec::new();
    for (shard, (run_id, tests)) in shards.iter().zip(&shard_tests).enumerate() {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let failing = tests[0]["name"].as_str().filter(|_| shard == 1);
        report_finished(&client, executor, *run_id, results(tests, failing)).await;
        all_tests.extend(tests.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
    }
    all_tests.sort();
    assert_eq!(all_tests.len(), 6, "{all_tests:?}");

    // A 2 × 2 matrix (labels × Python): three members end, the last one keeps running (its
    // executor beating for it) until the page cancels the group.
    let matrix = json!({"labels": [["linux"], ["lab"]], "python": ["3.11", "3.12"]});
    let (matrix_id, members) = start_group(
        &api,
        json!({"test_case_id": test_case_id, "matrix": matrix}),
    )
    .await;
    assert_eq!(members.len(), 4);
    for run_id in &members {
        client
            .accept("report_run_started", executor, json!({"run_id": run_id}))
            .await;
    }
    let running = members[3];
    let beating = {
        let client = lab.client();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                client
                    .beat("e1", vec![runledger_types::RunId(running)])
                    .await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    for (n, run_id) in members[..3].iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let failing = (n == 1).then_some("test_2");
        report_finished(&client, executor, *run_id, results(&suite, failing)).await;
    }
    let head = lab.store.head().await.unwrap();
    api.get(&format!("/api/v1/groups?min_position={head}"))
        .await;

    let (_driver, port) = chromedriver().await;
    let web = browser(port).await;
    web.goto(&format!("http://{addr}/")).await.unwrap();
    log_in(&web).await;

    // The list: both groups, newest first.
    web.find(Locator::LinkText("Groups"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let listed = eventually(WAIT, "both groups listed", || async {
        let rows = web
            .find_all(Locator::Css("#groups-table tbody tr"))
            .await
            .ok()?;
        (rows.len() == 2).then_some(statuses(&web, "#groups-table tbody tr").await)
    })
    .await;
    assert_eq!(listed, ["running", "failed"]);
    let ids = web
        .execute(
            "return [...document.querySelectorAll('#groups-table tbody tr')]\
             .map((row) => row.dataset.groupId);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ids, json!([matrix_id, shards_id]));
    let table = text_of(&web, "#groups-table tbody").await;
    assert!(
        table.contains("matrix") && table.contains("shards"),
        "{table}"
    );
    assert!(table.contains("suite"), "{table}");
    std::fs::write(
        artifacts().join("groups.png"),
        web.screenshot().await.unwrap(),
    )
    .unwrap();

    // The sharded group: one timeline row per shard with its status and a predicted mark, and
    // every test of the suite once in the merged table, the failure first.
    web.goto(&format!("http://{addr}/#group/{shards_id}"))
        .await
        .unwrap();
    let rows = eventually(WAIT, "the shards' timeline", || async {
        let rows = statuses(&web, "#group-gantt .gantt-row").await;
        (rows.len() == 3).then_some(rows)
    })
    .await;
    assert_eq!(rows, ["passed", "failed", "passed"]);
    let predicted = web
        .find_all(Locator::Css("#group-gantt .gantt-predicted"))
        .await
        .unwrap();
    assert_eq!(predicted.len(), 3);
    let bars = web
        .find_all(Locator::Css("#group-gantt .gantt-bar"))
        .await
        .unwrap();
    assert_eq!(bars.len(), 3);
    let mut ends = Vec::new();
    for bar in &bars {
        let start: i64 = bar
            .attr("data-start-ms")
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        let end: i64 = bar
            .attr("data-end-ms")
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        assert!(start <= end, "{start} > {end}");
        ends.push(end);
    }
    assert!(ends[0] < ends[2], "{ends:?}");
    let facts = text_of(&web, "#group-facts").await;
    assert!(
        facts.contains("failed") && facts.contains("shards"),
        "{facts}"
    );
    assert!(
        facts.contains("ideal") && facts.contains("predicted"),
        "{facts}"
    );
    assert!(facts.contains("5 passed, 1 failed"), "{facts}");
    let tests = eventually(WAIT, "the merged tests", || async {
        let rows = statuses(&web, "#group-tests tbody tr").await;
        (rows.len() == 6).then_some(rows)
    })
    .await;
    assert_eq!(tests[0], "failed", "{tests:?}");
    assert_eq!(tests[1..], ["passed"; 5]);
    let merged = text_of(&web, "#group-tests tbody").await;
    for name in &all_tests {
        assert!(merged.contains(name.as_str()), "{name} missing: {merged}");
    }
    assert!(
        !web.find(Locator::Css("#group-matrix-block"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    assert!(
        !web.find(Locator::Css("#cancel-group"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    let junit = web
        .find(Locator::Css("#group-junit"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(
        junit.as_deref(),
        Some(format!("/api/v1/groups/{shards_id}/junit").as_str())
    );
    std::fs::write(
        artifacts().join("group-shards.png"),
        web.screenshot().await.unwrap(),
    )
    .unwrap();

    // A member's page links back to its group.
    web.goto(&format!("http://{addr}/#run/{}", shards[1]))
        .await
        .unwrap();
    let facts = eventually(WAIT, "the member's group link", || async {
        let facts = text_of(&web, "#run-facts").await;
        facts.contains("member of group").then_some(facts)
    })
    .await;
    assert!(facts.contains("shard 1"), "{facts}");
    // The page redraws on live changes: a link found just before a redraw is gone when
    // clicked, so the click is retried on the link as it is now.
    eventually(WAIT, "the group link clicked", || async {
        let link = web.find(Locator::Css("#run-group a")).await.ok()?;
        link.click().await.ok()
    })
    .await;
    eventually(WAIT, "back on the group's page", || async {
        (statuses(&web, "#group-gantt .gantt-row").await.len() == 3).then_some(())
    })
    .await;

    // The matrix: a 2 × 2 grid coloured by status, a timeline row per combination, and the
    // three ended members' tests.
    web.goto(&format!("http://{addr}/#group/{matrix_id}"))
        .await
        .unwrap();
    let rows = eventually(WAIT, "the matrix's timeline", || async {
        let rows = statuses(&web, "#group-gantt .gantt-row").await;
        (rows.len() == 4).then_some(rows)
    })
    .await;
    assert_eq!(rows, ["passed", "failed", "passed", "running"]);
    let cells = statuses(&web, "#group-matrix .matrix-cell").await;
    assert_eq!(cells, ["passed", "failed", "passed", "running"]);
    let grid = web
        .find_all(Locator::Css("#group-matrix tr"))
        .await
        .unwrap();
    assert_eq!(grid.len(), 3, "a header row and one per label set");
    let matrix_text = text_of(&web, "#group-matrix").await;
    for dimension in ["linux", "lab", "py3.11", "py3.12"] {
        assert!(matrix_text.contains(dimension), "{matrix_text}");
    }
    let tests = eventually(WAIT, "the matrix's merged tests", || async {
        let rows = statuses(&web, "#group-tests tbody tr").await;
        (rows.len() == 18).then_some(rows)
    })
    .await;
    assert_eq!(tests[0], "failed", "{tests:?}");
    std::fs::write(
        artifacts().join("group-matrix-running.png"),
        web.screenshot().await.unwrap(),
    )
    .unwrap();

    // Cancelled from the page: the running member is asked to stop, its executor stops it, and
    // the page follows the group to `cancelled`.
    let cancel = eventually(WAIT, "the cancel button", || async {
        let button = web.find(Locator::Css("#cancel-group")).await.ok()?;
        button.is_displayed().await.ok()?.then_some(button)
    })
    .await;
    cancel.click().await.unwrap();
    eventually(WAIT, "the member's cancellation asked", || async {
        let asked: i64 = runledger_test_support::sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE type = 'run_cancel_requested' \
             AND data->>'run_id' = $1",
        )
        .bind(running.to_string())
        .fetch_one(&lab.db.pool)
        .await
        .ok()?;
        (asked == 1).then_some(())
    })
    .await;
    let stopped = json!({"run_id": running, "status": "cancelled", "exit_code": null,
                         "reason": "cancelled from the dashboard"});
    client
        .accept("report_run_finished", executor, stopped)
        .await;
    eventually(WAIT, "the group cancelled on its page", || async {
        let status = text_of(&web, "#group-status").await;
        let rows = statuses(&web, "#group-gantt .gantt-row").await;
        (status == "cancelled" && rows.last().map(String::as_str) == Some("cancelled"))
            .then_some(())
    })
    .await;
    assert_eq!(
        statuses(&web, "#group-matrix .matrix-cell").await,
        ["passed", "failed", "passed", "cancelled"]
    );
    assert!(
        !web.find(Locator::Css("#cancel-group"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    web.execute(
        "document.querySelector('#group-gantt').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    std::fs::write(
        artifacts().join("group-matrix-cancelled.png"),
        web.screenshot().await.unwrap(),
    )
    .unwrap();

    web.close().await.unwrap();
    shutdown.cancel();
    let _ = beating.await;
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
