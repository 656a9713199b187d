//! The README's first command, `scripts/demo.sh`, run as a user runs it (against the services
//! already present, with this test's own database, NATS prefix and HTTP port), checked through the
//! API: the demo run passed, the example test cases exist and the failing example's run failed.
//! While it runs, machines over SSH (a real sshd, and a closed port) are added so that `/metrics`
//! after those runs shows every series docs/api.md lists. Then the demo is stopped with SIGTERM
//! and run a second time: it does no harm, and its run passes again. On streams that hold another
//! log's events, the demo takes a prefix of its own, says so, and its run passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{TestDb, TestLab, TestSshd, eventually, free_port, runledger_binary};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// One demo at a time: demos share this host's `local` venv directory.
static ONE_DEMO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Provisioning installs pytest from PyPI the first time.
const DEMO_WAIT: Duration = Duration::from_secs(300);
const FAILING_EXAMPLE: &str = "0193a000-0000-7000-8000-000000000005";

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The demo script's process group: killed when dropped (a failed test leaves no server
/// behind holding the port and the output pipe).
struct Demo {
    child: Child,
    group: String,
    /// What the script and the server printed after the dashboard's address.
    later: Arc<Mutex<Vec<String>>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // Usually gone already (stopped by SIGTERM): then `kill` finds nothing, quietly.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.group)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Starts the demo and waits for it to print the dashboard's address; returns it running.
async fn demo(lab: &TestLab, addr: &str) -> (Demo, Vec<String>) {
    let mut child = Command::new("bash")
        .arg("scripts/demo.sh")
        .current_dir(repo_root())
        .env("RUNLEDGER_BIN", runledger_binary())
        .env("DATABASE_URL", &lab.db.url)
        .env("NATS_URL", &lab.nats.url)
        .env("RUNLEDGER_NATS_PREFIX", lab.nats.names.prefix())
        .env("RUNLEDGER_HTTP_ADDR", addr)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("run scripts/demo.sh");
    let group = child.id().expect("running").to_string();
    // The script's progress (`==> ...`) goes to stderr, the commands' answers to stdout.
    let mut answers = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::spawn(async move { while let Ok(Some(_)) = answers.next_line().await {} });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(DEMO_WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("dashboard: http://");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(ready, Ok(true)),
        "the demo did not print its dashboard address:\n{}",
        seen.join("\n")
    );
    // Keep draining its output so it never blocks on a full pipe.
    let later: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = Arc::clone(&later);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    (
        Demo {
            child,
            group,
            later,
        },
        seen,
    )
}

/// SIGTERM to the script, as Ctrl-C would: it stops the server it started.
async fn stop(mut demo: Demo) {
    let status = Command::new("kill")
        .args(["-TERM", &demo.group])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(90), demo.child.wait()).await;
    let printed = demo.later.lock().unwrap().join("\n");
    assert!(
        stopped.is_ok(),
        "the demo did not stop within 90 s of SIGTERM; it printed:\n{printed}"
    );
    println!("the demo stopped {:?} after SIGTERM", started.elapsed());
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(base: String) -> Self {
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{base}/api/v1/tokens"))
            .json(&json!({"username": "admin", "password": "runledger-demo"}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .expect("the demo's admin logs in")
            .json()
            .await
            .unwrap();
        let token = answer["token"].as_str().unwrap().to_owned();
        Self { http, base, token }
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The first page of `GET /api/v1/runs?<query>`.
    async fn runs(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/runs?{query}")).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Every `runledger_*` series named in the metrics table of docs/api.md.
fn documented_series() -> Vec<String> {
    let docs = std::fs::read_to_string(repo_root().join("docs/api.md")).unwrap();
    let section = &docs[docs.find("## Metrics").unwrap()..];
    let mut series = Vec::new();
    for row in section
        .lines()
        .filter(|line| line.starts_with("| `runledger_"))
    {
        let names = row.split('|').nth(1).unwrap();
        for name in names
            .split('`')
            .filter(|part| part.starts_with("runledger_"))
        {
            series.push(name.to_owned());
        }
    }
    series
}

/// True when the scrape has a sample of `series` (a histogram's samples are `_bucket`, `_sum`
/// and `_count`).
fn shows(text: &str, series: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(series)
            .is_some_and(|rest| rest.starts_with(['{', ' ']) || rest.starts_with("_bucket{"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_works_its_metrics_show_every_series_and_a_second_run_does_no_harm() {
    let _one = ONE_DEMO.lock().await;
    let lab = TestLab::create().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let (first, output) = demo(&lab, &addr).await;
    let api = Api::login(base.clone()).await;
    let passed = api.runs("status=passed").await;
    assert_eq!(
        passed.len(),
        1,
        "the demo's run passed:\n{}",
        output.join("\n")
    );
    assert_eq!(passed[0]["test_case_name"], "hello");
    let test_cases = api.get("/api/v1/test-cases").await;
    let names: Vec<&str> = test_cases
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tc| tc["name"].as_str())
        .collect();
    for example in ["example-passing", "example-failing", "example-slow"] {
        assert!(names.contains(&example), "{names:?}");
    }
    // The failing example, started by the demo over HTTP, fails on its tests.
    let failing = eventually(DEMO_WAIT, "the failing example's run", || async {
        let runs = api
            .runs(&format!("test_case_id={FAILING_EXAMPLE}&status=failed"))
            .await;
        runs.into_iter().next()
    })
    .await;
    assert!(
        failing["summary"]["failed"].as_u64().unwrap() >= 1,
        "{failing}"
    );

    // Machines over SSH: a real sshd, and a port nobody listens on.
    let sshd = TestSshd::start();
    let client = lab.client();
    let reachable = Uuid::now_v7();
    let machine = json!({"machine_id": reachable, "name": "sshd", "host": sshd.host,
                         "port": sshd.port, "username": sshd.username, "password": sshd.password});
    assert!(
        client
            .send("register_machine", "admin", machine)
            .await
            .accepted
    );
    let unreachable = Uuid::now_v7();
    let machine = json!({"machine_id": unreachable, "name": "gone", "host": "127.0.0.1",
                         "port": free_port(), "username": "nobody", "password": "nothing-here"});
    assert!(
        client
            .send("register_machine", "admin", machine)
            .await
            .accepted
    );
    for (machine_id, name) in [(reachable, "over-ssh"), (unreachable, "never")] {
        let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id, "name": name,
                          "python": "/usr/bin/python3"});
        assert!(client.send("add_venv", "admin", venv).await.accepted);
    }
    // A refused command, for the rejection counter.
    let again = json!({"username": "admin", "role": "admin", "password": "another-password"});
    assert!(!client.send("register_user", "admin", again).await.accepted);
    let expected = documented_series();
    assert!(expected.len() >= 18, "{expected:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let text = loop {
        let text = api.metrics().await;
        let mut missing: Vec<&str> = expected
            .iter()
            .map(String::as_str)
            .filter(|s| !shows(&text, s))
            .collect();
        // The venv on the sshd is provisioned over SSH; the other one fails to connect.
        for sample in [
            r#"runledger_venvs{machine="sshd",status="free"} 1"#,
            r#"runledger_venvs{machine="gone",status="broken"} 1"#,
            r#"runledger_run_duration_seconds_bucket{status="passed""#,
        ] {
            if !text.contains(sample) {
                missing.push(sample);
            }
        }
        if missing.is_empty() {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "series missing from /metrics: {missing:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        text.contains(r#"runledger_ssh_connect_failures_total{reason="unreachable"}"#),
        "{text}"
    );
    stop(first).await;

    // Again: already-registered things are refused, nothing breaks, the new run passes too.
    let (second, output) = demo(&lab, &addr).await;
    let api = Api::login(base).await;
    let passed = api.runs("status=passed").await;
    let hello = passed
        .iter()
        .filter(|run| run["test_case_name"] == "hello")
        .count();
    assert_eq!(hello, 2, "{passed:?}\n{}", output.join("\n"));

    // SIGTERM while a run is going: the executor finishes it and the handler records its end
    // before the process exits.
    let test_case_id = Uuid::now_v7();
    let sleeper = json!({"test_case_id": test_case_id, "name": "sleeper",
                         "command": "echo begun; sleep 4; echo done"});
    assert!(
        client
            .send("define_test_case", "admin", sleeper)
            .await
            .accepted
    );
    let run_id = Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": test_case_id, "labels": ["demo"]});
    assert!(client.send("start_run", "admin", start).await.accepted);
    let of_run = |e: &runledger_types::EventRecord, kind: &str| {
        e.event_type == kind && e.data["run_id"] == json!(run_id)
    };
    eventually(
        Duration::from_secs(60),
        "the sleeper's first output",
        || async {
            let log = lab.store.read_after(0, 100_000).await.unwrap();
            log.iter().any(|e| of_run(e, "run_output")).then_some(())
        },
    )
    .await;
    stop(second).await;
    let log = lab.store.read_after(0, 100_000).await.unwrap();
    let end = log
        .iter()
        .find(|e| of_run(e, "run_finished"))
        .expect("the run's end was recorded before the service exited");
    assert_eq!(end.data["status"], "passed", "{}", end.data);
    lab.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_logs_streams_the_demo_takes_a_prefix_of_its_own_and_says_so() {
    let _one = ONE_DEMO.lock().await;
    // The default streams hold another log's events (a database dropped to start over).
    let other = TestLab::create().await;
    let handler = other.start_handler().await;
    other.client().register_admin("someone").await;
    handler.stop().await;
    let db = TestDb::create().await;
    let lab = TestLab {
        store: runledger_store::EventStore::new(db.pool.clone()),
        db,
        nats: other.nats.clone(),
        keyring: other.keyring.clone(),
    };
    let log = lab.store.log_id().await.unwrap().to_string();
    let addr = format!("127.0.0.1:{}", free_port());
    let (demo, output) = demo(&lab, &addr).await;
    let taken = lab.nats.names.prefix();
    let own = format!("{taken}-{}", &log[..8]);
    assert!(
        output
            .iter()
            .any(|line| line.contains(&format!("this demo uses RUNLEDGER_NATS_PREFIX={own}"))),
        "the demo did not say which prefix it took:\n{}",
        output.join("\n")
    );
    let passed: i64 = runledger_test_support::sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE type = 'run_finished' AND data->>'status' = 'passed'",
    )
    .fetch_one(&lab.db.pool)
    .await
    .unwrap();
    assert!(passed >= 1, "the demo's run passed in its own log");
    stop(demo).await;
    let own_names = runledger_bus::BusNames::new(&own).unwrap();
    let js = lab.nats.jetstream();
    runledger_bus::reset::delete_streams(&js, &own_names)
        .await
        .unwrap();
    lab.db.cleanup().await;
    other.cleanup().await;
}
