//! Run group benchmark (docs/benchmarks.md, "Run groups"): a pytest suite of 400 tests whose
//! sleeps follow a long-tailed distribution (Zipf, exponent 0.8, shuffled; about 120 s in all),
//! known from a previous run, split across 8 venvs on a real OpenSSH `sshd` on loopback, with a
//! handler, a projector and an executor in this process.
//!
//! - `group`: `start_group {shards: 8}`: the wall time from `group_started` to `group_finished`
//!   (their `recorded_at`), against the **ideal makespan** of the same durations,
//!   `max(total / 8, longest)`: the least any split of these tests over 8 venvs can take.
//! - `naive`: the same tests split into 8 runs of equal test counts in name order (the split
//!   that timing-less tools make), started together as ordinary runs selecting their tests, in
//!   the same process: the wall time from the first `run_requested` to the last `run_finished`.
//!
//! The previous run is reported as an executor would report it (every test with its designed
//! duration), so the history is exactly the designed durations and the benchmark needs no
//! two-minute sequential run first.
//!
//! Needs root and Debian's openssh-server (`source scripts/services.sh && ensure_sshd`), and
//! PyPI for pytest. Run: `cargo run --release -p runledger-tests --bin bench-groups`.
//! Prints one JSON line (`{"bench":"groups",...}`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use runledger_executor::{ExecutorSettings, run as run_executor};
use runledger_test_support::{CommandClient, TestLab, TestSshd, eventually, suite_history};
use runledger_types::TestCaseId;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Tests in the suite.
    #[arg(long, default_value_t = 400)]
    tests: usize,
    /// Their total sleep, in seconds.
    #[arg(long, default_value_t = 120.0)]
    total_seconds: f64,
    /// Venvs, and shards.
    #[arg(long, default_value_t = 8)]
    venvs: usize,
}

const ADMIN: &str = "admin";
const HISTORY: &str = "executor:history";
const WAIT: Duration = Duration::from_secs(900);

/// The designed sleeps in ms, by test index: Zipf with exponent 0.8 scaled to `total_ms`, then
/// shuffled by a fixed permutation so that names do not sort by duration.
fn durations(tests: usize, total_ms: f64) -> Vec<u64> {
    let weights: Vec<f64> = (1..=tests).map(|rank| (rank as f64).powf(-0.8)).collect();
    let sum: f64 = weights.iter().sum();
    let mut ms: Vec<u64> = weights
        .iter()
        .map(|w| ((w / sum) * total_ms).round().max(1.0) as u64)
        .collect();
    // A fixed shuffle (a linear congruential generator, Fisher–Yates).
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..ms.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let j = (state >> 33) as usize % (i + 1);
        ms.swap(i, j);
    }
    ms
}

fn suite(durations: &[u64]) -> String {
    let mut text = String::from("import time\n");
    for (i, ms) in durations.iter().enumerate() {
        text.push_str(&format!(
            "\n\ndef test_{i:03}():\n    time.sleep({})\n",
            *ms as f64 / 1000.0
        ));
    }
    text
}

fn accepted(outcome: runledger_types::Outcome) -> runledger_types::Outcome {
    assert!(outcome.accepted, "{outcome:?}");
    outcome
}

/// The previous run of the whole suite, reported as an executor would: on a venv of a machine
/// of its own (retired afterwards), before the real executor starts.
async fn history(client: &CommandClient, test_case_id: Uuid, durations: &[u64]) {
    let tests: Vec<Value> = durations
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            json!({"classname": "tests.test_bench", "name": format!("test_{i:03}"),
                   "status": "passed", "duration_ms": ms})
        })
        .collect();
    let machine_id = suite_history(client, (ADMIN, HISTORY), test_case_id, &tests).await;
    accepted(
        client
            .send("retire_machine", ADMIN, json!({"machine_id": machine_id}))
            .await,
    );
}

/// The least that starting the shards' pytest costs on this host, whatever the split: as many
/// concurrent `pytest` processes as venvs, one in each, each collecting the whole suite (its
/// sleeps made 0) and running one test, as a shard does; the wall time until the last ends.
async fn pytest_floor(lab: &TestLab, machine_id: Uuid, user: &str, durations: &[u64]) -> u64 {
    let dir = std::env::temp_dir().join(format!("runledger-bench-groups-{}", Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("tests/test_bench.py"),
        suite(&vec![0; durations.len()]),
    )
    .unwrap();
    let venvs = runledger_readmodel::lab::venvs(&lab.db.pool).await.unwrap();
    let pythons: Vec<String> = venvs
        .iter()
        .filter(|v| v.machine_id == machine_id)
        .map(|v| {
            format!(
                "{}/bin/python",
                v.path.replacen('~', &format!("/home/{user}"), 1)
            )
        })
        .collect();
    let began = std::time::Instant::now();
    let children: Vec<_> = pythons
        .iter()
        .enumerate()
        .map(|(n, python)| {
            tokio::process::Command::new(python)
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
                .arg(format!("--junitxml=junit-{n}.xml"))
                .arg(format!("tests/test_bench.py::test_{n:03}"))
                .current_dir(&dir)
                .stdout(std::process::Stdio::null())
                .status()
        })
        .collect();
    for status in futures::future::join_all(children).await {
        assert!(status.unwrap().success(), "the floor's pytest failed");
    }
    let floor = began.elapsed().as_millis() as u64;
    let _ = std::fs::remove_dir_all(&dir);
    floor
}

/// Milliseconds between two RFC 3339 times of the read models.
fn span_ms(from: &Value, to: &Value) -> i64 {
    let time = |value: &Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    time(to) - time(from)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    runledger_tests::init_tracing();
    let durations = durations(args.tests, args.total_seconds * 1000.0);
    let total: u64 = durations.iter().sum();
    let longest = durations.iter().copied().max().unwrap_or(0);
    let ideal_ms = (total / args.venvs as u64).max(longest);

    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let client = lab.client();
    let user = json!({"username": ADMIN, "role": "admin", "password": "admin-password"});
    accepted(client.send("register_user", "bootstrap", user).await);
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "long tail", "timeout_s": 900,
        "command": "pytest -q -p no:cacheprovider --junitxml=junit.xml",
        "junit_xml": "junit.xml",
        "files": [{"path": "tests/test_bench.py", "content": suite(&durations)}]});
    accepted(client.send("define_test_case", ADMIN, test_case).await);
    history(&client, test_case_id, &durations).await;

    let sshd = TestSshd::start();
    let shutdown = CancellationToken::new();
    let settings = ExecutorSettings::new("bench", lab.nats.names.clone(), lab.keyring.clone());
    let executor = tokio::spawn(run_executor(
        lab.nats.client.clone(),
        settings,
        shutdown.clone(),
    ));
    let machine_id = Uuid::now_v7();
    let machine = json!({"machine_id": machine_id, "name": "sshd", "host": sshd.host,
                         "port": sshd.port, "username": sshd.username, "password": sshd.password});
    accepted(client.send("register_machine", ADMIN, machine).await);
    for n in 0..args.venvs {
        let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id,
                          "name": format!("bench-{n}"), "python": "/usr/bin/python3",
                          "requirements": ["pytest"]});
        accepted(client.send("add_venv", ADMIN, venv).await);
    }
    eventually(WAIT, "every venv provisioned", || async {
        let venvs = runledger_readmodel::lab::venvs(&lab.db.pool).await.ok()?;
        let free = venvs
            .iter()
            .filter(|v| v.machine_id == machine_id && v.status.as_str() == "free")
            .count();
        (free == args.venvs).then_some(())
    })
    .await;

    let floor_ms = pytest_floor(&lab, machine_id, &sshd.username, &durations).await;

    // The duration split, as one group.
    let group_id = Uuid::now_v7();
    let start = json!({"group_id": group_id, "test_case_id": test_case_id,
                       "shards": args.venvs, "machine_id": machine_id});
    accepted(client.send("start_group", ADMIN, start).await);
    let group = eventually(WAIT, "the group to end", || async {
        let row = runledger_readmodel::groups::group(&lab.db.pool, group_id)
            .await
            .ok()??;
        (row.status != runledger_types::GroupStatus::Running).then_some(row)
    })
    .await;
    assert_eq!(group.status.as_str(), "passed", "{group:?}");
    let group_ms = group.duration_ms.unwrap();
    let predicted_ms = group.predicted_ms.unwrap_or(0);
    // Where the time beyond the split went: until the last member's process started, and the
    // most a member's run took beyond its predicted tests.
    let members = runledger_readmodel::groups::members(&lab.db.pool, group_id)
        .await
        .unwrap();
    let plan = group.plan.as_array().cloned().unwrap_or_default();
    let last_start_ms = members
        .iter()
        .filter_map(|m| m.started_at)
        .map(|t| (t - group.started_at).num_milliseconds())
        .max()
        .unwrap_or(0);
    let beyond_ms = members
        .iter()
        .map(|m| {
            let predicted = plan
                .iter()
                .find(|p| p["run_id"] == json!(m.run_id))
                .and_then(|p| p["predicted_ms"].as_i64())
                .unwrap_or(0);
            m.duration_ms.unwrap_or(0) - predicted
        })
        .max()
        .unwrap_or(0);

    // The naive split: equal counts in name order, as eight runs started together.
    let per_shard = args.tests.div_ceil(args.venvs);
    let mut runs = Vec::new();
    for shard in 0..args.venvs {
        let ids: Vec<String> = (shard * per_shard..((shard + 1) * per_shard).min(args.tests))
            .map(|i| {
                runledger_insights::test_id(
                    TestCaseId::from(test_case_id),
                    "tests.test_bench",
                    &format!("test_{i:03}"),
                )
                .0
                .to_string()
            })
            .collect();
        let run_id = Uuid::now_v7();
        let start = json!({"run_id": run_id, "test_case_id": test_case_id,
                           "machine_id": machine_id, "tests": ids});
        accepted(client.send("start_run", ADMIN, start).await);
        runs.push(run_id);
    }
    let naive = eventually(WAIT, "the naive runs to end", || async {
        let mut rows = Vec::new();
        for run_id in &runs {
            let row = runledger_readmodel::runs::run(&lab.db.pool, *run_id)
                .await
                .ok()??;
            row.finished_at?;
            rows.push(row);
        }
        Some(rows)
    })
    .await;
    assert!(
        naive.iter().all(|r| r.status.as_str() == "passed"),
        "{naive:?}"
    );
    let first = naive.iter().map(|r| r.queued_at).min().unwrap();
    let last = naive.iter().filter_map(|r| r.finished_at).max().unwrap();
    let naive_ms = span_ms(&json!(first), &json!(last));
    let naive_predicted: u64 = (0..args.venvs)
        .map(|shard| {
            durations[shard * per_shard..((shard + 1) * per_shard).min(args.tests)]
                .iter()
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0);

    let line = json!({
        "bench": "groups", "tests": args.tests, "venvs": args.venvs,
        "total_ms": total, "longest_ms": longest, "ideal_ms": ideal_ms,
        "group_ms": group_ms, "group_predicted_ms": predicted_ms,
        "group_last_start_ms": last_start_ms, "group_member_beyond_predicted_ms": beyond_ms,
        "group_vs_ideal": group_ms as f64 / ideal_ms as f64,
        "pytest_floor_ms": floor_ms,
        "group_vs_ideal_plus_floor": group_ms as f64 / (ideal_ms + floor_ms) as f64,
        "naive_ms": naive_ms, "naive_predicted_ms": naive_predicted,
        "naive_vs_ideal": naive_ms as f64 / ideal_ms as f64,
        "group_vs_naive": group_ms as f64 / naive_ms as f64,
    });
    println!("{line}");

    shutdown.cancel();
    let _ = executor.await;
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
