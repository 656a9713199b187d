//! The dashboard in a real headless Chromium (Debian's `chromium` and `chromedriver`, driven over
//! WebDriver): log in, start a run, watch it finish with its live log, filter the table. The
//! run is real: an executor in this process runs it on this host (a `local` machine). Screenshots
//! go to `target/test-artifacts/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use fantoccini::{Client, ClientBuilder, Locator};
use runledger_executor::{ExecutorSettings, run as run_executor};
use runledger_test_support::{
    TestLab, eventually, lab_for_reported_runs, reported_run, wobbly_suite,
};
use serde_json::json;
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
