//! Run groups end to end, with a real executor over a real sshd running real pytest suites on
//! four venvs:
//!
//! - a suite of 40 tests with known sleep durations, never run before, splits at collection
//!   into 4 shards of 10; then, known from a whole run, as a 4-shard group by durations
//!   (`runledger group start --shards 4 --follow --junit-out`): every test runs exactly once,
//!   the merged report holds all 40, the group passes, and it finishes within 1.2 × the ideal
//!   makespan plus what dispatching its members cost; after the suite loses a test and gains
//!   another, a group runs the new one once and does not ask for the removed one;
//! - a 2 × 2 matrix (two label sets × two environments) runs four combinations, each member
//!   with its env;
//! - a group with more shards than tests passes, the shards left without a test included;
//! - cancelling a group of long tests ends every member and frees every venv;
//! - an executor killed with SIGKILL mid-group: the members are retried by another and the
//!   group still ends, honestly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_executor::{ExecutorSettings, run};
use runledger_test_support::{TestLab, TestSshd, eventually, runledger_binary};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ADMIN: &str = "ada";
/// Provisioning venvs with pytest from PyPI over SSH on a loaded machine.
const PROVISION_WAIT: Duration = Duration::from_secs(300);
const VENVS: usize = 4;
const TESTS: usize = 40;

/// The sleep of test `i`: a long tail (three of 1.5 s, six of 0.6 s, the rest 0.15 s; 12.75 s
/// in all, so the ideal 4-shard makespan is max(12.75 / 4, 1.5) = 3.19 s).
fn sleep_ms(i: usize) -> u64 {
    match i {
        0..=2 => 1500,
        3..=8 => 600,
        _ => 150,
    }
}

/// The suite; with `SUITE_VARIANT=changed` in its env, it has lost `test_00` and gained
/// `test_40`, as a suite does between two groups.
fn suite() -> String {
    let mut text = String::from("import os\nimport time\n\n");
    for i in 0..TESTS {
        text.push_str(&format!(
            "\ndef test_{i:02}():\n    time.sleep({})\n",
            sleep_ms(i) as f64 / 1000.0
        ));
    }
    text.push_str(
        "\n\nif os.environ.get('SUITE_VARIANT') == 'changed':\n    del test_00\n\n\
         \x20   def test_40():\n        time.sleep(0.15)\n",
    );
    text
}

const ENV_SUITE: &str = "\
import os


def test_env():
    print('X=' + os.environ['X'])
";

const ONE_TEST: &str = "\
def test_only():
    pass
";

const SLOW_SUITE: &str = "\
import time


def test_slow_a():
    time.sleep(120)


def test_slow_b():
    time.sleep(120)
";

/// Tests in [`large_suite`].
const LARGE_TESTS: usize = 3_000;

/// A suite of [`LARGE_TESTS`] instant tests with long names: about 240 KB of node ids.
fn large_suite() -> String {
    let mut text = String::new();
    for i in 0..LARGE_TESTS {
        text.push_str(&format!(
            "def test_a_rather_long_and_descriptive_name_of_a_test_number_{i:05}():\n    pass\n\n"
        ));
    }
    text
}

fn cli(lab: &TestLab, args: &[&str]) -> Command {
    let mut command = lab.runledger(runledger_binary());
    command
        .args(args)
        .env("RUNLEDGER_ACTOR", ADMIN)
        .env_remove("RUST_LOG");
    command
}

/// The `(classname, name)` of every `<testcase>` of a JUnit report, in order.
fn testcases(report: &str) -> Vec<String> {
    report
        .split("<testcase ")
        .skip(1)
        .filter_map(|case| {
            let name = case.split("name=\"").nth(1)?;
            Some(name.split('"').next()?.to_owned())
        })
        .collect()
}

async fn define(lab: &TestLab, name: &str, suite: &str, extra: Value) -> Uuid {
    let test_case_id = Uuid::now_v7();
    let mut test_case = json!({"test_case_id": test_case_id, "name": name, "timeout_s": 300,
        "command": "pytest -q -s -p no:cacheprovider --junitxml=junit.xml",
        "junit_xml": "junit.xml",
        "files": [{"path": "tests/test_suite.py", "content": suite}]});
    if let (Some(object), Value::Object(extra)) = (test_case.as_object_mut(), extra) {
        object.extend(extra);
    }
    let outcome = lab
        .client()
        .send("define_test_case", ADMIN, test_case)
        .await;
    assert!(outcome.accepted, "{outcome:?}");
    test_case_id
}

async fn show_group(lab: &TestLab, group_id: &str) -> Value {
    let shown = cli(lab, &["group", "show", group_id])
        .output()
        .await
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    serde_json::from_slice(&shown.stdout).unwrap()
}

fn millis(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_split_a_suite_run_a_matrix_and_cancel_over_ssh() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let sshd = TestSshd::start();
    let client = lab.client();
    let shutdown = CancellationToken::new();
    let mut settings = ExecutorSettings::new("groups", lab.nats.names.clone(), lab.keyring.clone());
    settings.shutdown_grace = Duration::from_secs(5);
    let executor = tokio::spawn(run(lab.nats.client.clone(), settings, shutdown.clone()));

    client.register_admin(ADMIN).await;
    let machine_id = client.register_sshd_machine(ADMIN, &sshd).await;
    let labels = json!({"machine_id": machine_id, "labels": ["linux", "lab"]});
    assert!(client.send("update_machine", ADMIN, labels).await.accepted);
    for _ in 0..VENVS {
        let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id,
                          "name": format!("g{}", &Uuid::now_v7().simple().to_string()[20..]),
                          "python": "/usr/bin/python3", "requirements": ["pytest"]});
        assert!(client.send("add_venv", ADMIN, venv).await.accepted);
    }
    eventually(PROVISION_WAIT, "every venv provisioned", || async {
        let log = lab.store.read_after(0, 10_000).await.unwrap();
        let failed = log
            .iter()
            .find(|e| e.event_type == "venv_provisioning_failed");
        assert!(failed.is_none(), "provisioning failed: {failed:?}");
        let provisioned = log
            .iter()
            .filter(|e| e.event_type == "venv_provisioned")
            .count();
        (provisioned == VENVS).then_some(())
    })
    .await;
    let dir = std::env::temp_dir().join(format!("runledger-groups-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();

    // A suite never run whole still splits: each shard's pytest places the tests at collection.
    let variant = json!({"env_overridable": ["SUITE_VARIANT"]});
    let test_case_id = define(&lab, "long tail", &suite(), variant).await;
    let fresh_path = dir.join("fresh.xml");
    let fresh = cli(
        &lab,
        &[
            "group",
            "start",
            &test_case_id.to_string(),
            "--shards",
            "4",
            "--junit-out",
        ],
    )
    .arg(&fresh_path)
    .output()
    .await
    .unwrap();
    assert!(fresh.status.success(), "{fresh:?}");
    let report = std::fs::read_to_string(&fresh_path).unwrap();
    let names = testcases(&report);
    assert_eq!(names.len(), TESTS, "every test once: {report}");
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        TESTS,
        "{report}"
    );
    let spread: Vec<usize> = report
        .split("<testsuite ")
        .skip(1)
        .map(|suite| suite.matches("<testcase ").count())
        .collect();
    assert_eq!(
        spread,
        [10, 10, 10, 10],
        "by count when nothing is known: {report}"
    );

    // The history: the whole suite once.
    let first = cli(&lab, &["run", "start", &test_case_id.to_string(), "--wait"])
        .output()
        .await
        .unwrap();
    assert!(first.status.success(), "{first:?}");

    // Four shards, split by those durations.
    let report_path = dir.join("group.xml");
    let started = cli(
        &lab,
        &[
            "group",
            "start",
            &test_case_id.to_string(),
            "--shards",
            "4",
            "--follow",
            "--junit-out",
        ],
    )
    .arg(&report_path)
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(started.status.success(), "{started:?}");
    assert!(stderr.contains("shard  3 ["), "a bar per shard: {stderr}");
    let group_id = String::from_utf8(started.stdout).unwrap().trim().to_owned();
    let report = std::fs::read_to_string(&report_path).unwrap();
    let names = testcases(&report);
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!(names.len(), TESTS, "every test once: {report}");
    assert_eq!(distinct.len(), TESTS, "no test twice: {report}");
    assert_eq!(report.matches("<testsuite ").count(), 4, "{report}");

    let shown = show_group(&lab, &group_id).await;
    let group = &shown["group"];
    assert_eq!(group["status"], "passed");
    assert_eq!(group["summary"]["passed"], TESTS);
    let total: u64 = (0..TESTS).map(sleep_ms).sum();
    let ideal_ms = (total / 4).max(1500);
    // Dispatch: from the group's start to the last member's start, plus the most any member
    // spent around its tests (SSH, upload, pytest's own start).
    let members = shown["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    let group_start = millis(&group["started_at"]);
    let mut dispatch_ms = 0;
    let mut last_start = group_start;
    for (member, planned) in members.iter().zip(group["plan"].as_array().unwrap()) {
        assert_eq!(member["status"], "passed");
        let tests_ms: u64 = planned["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let i: usize = t["name"].as_str().unwrap()[5..].parse().unwrap();
                sleep_ms(i)
            })
            .sum();
        let ran_ms = member["duration_ms"].as_i64().unwrap();
        dispatch_ms = dispatch_ms.max(ran_ms - tests_ms as i64);
        last_start = last_start.max(millis(&member["started_at"]));
    }
    let wall_ms = group["duration_ms"].as_i64().unwrap();
    let allowed = (1.2 * ideal_ms as f64) as i64 + (last_start - group_start) + dispatch_ms;
    eprintln!(
        "group wall {wall_ms} ms; ideal {ideal_ms} ms; dispatch {} + {dispatch_ms} ms",
        last_start - group_start
    );
    assert!(
        wall_ms <= allowed,
        "wall {wall_ms} ms > 1.2 × ideal {ideal_ms} ms + dispatch ({} + {dispatch_ms} ms)",
        last_start - group_start
    );

    // The suite changes: test_00 is removed, test_40 is added. The split still names test_00
    // (the history does), which no shard asks pytest for; test_40 runs exactly once.
    let changed_path = dir.join("changed.xml");
    let after = cli(
        &lab,
        &[
            "group",
            "start",
            &test_case_id.to_string(),
            "--shards",
            "4",
            "--env",
            "SUITE_VARIANT=changed",
            "--junit-out",
        ],
    )
    .arg(&changed_path)
    .output()
    .await
    .unwrap();
    assert!(after.status.success(), "{after:?}");
    let report = std::fs::read_to_string(&changed_path).unwrap();
    let names = testcases(&report);
    assert_eq!(names.len(), TESTS, "{report}");
    assert_eq!(
        names.iter().filter(|n| *n == "test_40").count(),
        1,
        "{report}"
    );
    assert!(!names.iter().any(|n| n == "test_00"), "{report}");

    // A 2 × 2 matrix: two label sets × two environments, each member with its env.
    let env_case = define(&lab, "env", ENV_SUITE, json!({"env_overridable": ["X"]})).await;
    let matrix = cli(
        &lab,
        &[
            "group",
            "start",
            &env_case.to_string(),
            "--matrix-labels",
            "linux",
            "--matrix-labels",
            "lab",
            "--matrix-env",
            "X=one",
            "--matrix-env",
            "X=two",
            "--wait",
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(matrix.status.success(), "{matrix:?}");
    let matrix_id = String::from_utf8(matrix.stdout).unwrap().trim().to_owned();
    let shown = show_group(&lab, &matrix_id).await;
    let members = shown["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    let mut seen = BTreeSet::new();
    for member in members {
        let env = member["env"]["X"].as_str().unwrap().to_owned();
        let run_id = member["run_id"].as_str().unwrap();
        let log = cli(&lab, &["run", "log", run_id]).output().await.unwrap();
        let output = String::from_utf8_lossy(&log.stdout);
        assert!(output.contains(&format!("X={env}")), "{output}");
        seen.insert((member["labels"].to_string(), env));
    }
    assert_eq!(seen.len(), 4, "four distinct combinations: {seen:?}");

    // More shards than tests: the shards pytest gives nothing to run pass.
    let one = define(&lab, "one test", ONE_TEST, json!({})).await;
    let one_path = dir.join("one.xml");
    let sparse = cli(
        &lab,
        &[
            "group",
            "start",
            &one.to_string(),
            "--shards",
            "3",
            "--junit-out",
        ],
    )
    .arg(&one_path)
    .output()
    .await
    .unwrap();
    assert!(sparse.status.success(), "{sparse:?}");
    let report = std::fs::read_to_string(&one_path).unwrap();
    assert_eq!(testcases(&report), ["test_only"], "{report}");
    assert_eq!(report.matches("<testsuite ").count(), 3, "{report}");

    // A large suite: each shard's tests take more than a run's selection may carry (100 KiB of
    // names); the shards read them from the split, recorded in parts, and run each test once.
    let large = define(&lab, "large", &large_suite(), json!({})).await;
    let whole = cli(&lab, &["run", "start", &large.to_string(), "--wait"])
        .output()
        .await
        .unwrap();
    assert!(whole.status.success(), "{whole:?}");
    let large_path = dir.join("large.xml");
    let split = cli(
        &lab,
        &[
            "group",
            "start",
            &large.to_string(),
            "--shards",
            "2",
            "--junit-out",
        ],
    )
    .arg(&large_path)
    .output()
    .await
    .unwrap();
    assert!(split.status.success(), "{split:?}");
    let group_id = String::from_utf8(split.stdout).unwrap().trim().to_owned();
    let shown = show_group(&lab, &group_id).await;
    for planned in shown["group"]["plan"].as_array().unwrap() {
        let names: usize = planned["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().len() + "tests/test_suite.py::".len() + 1)
            .sum();
        assert!(
            names > 100 * 1024,
            "{names} bytes of node ids in a shard: {shown}"
        );
    }
    let report = std::fs::read_to_string(&large_path).unwrap();
    let names: BTreeSet<String> = testcases(&report).into_iter().collect();
    assert_eq!(names.len(), LARGE_TESTS, "every test once");
    assert_eq!(testcases(&report).len(), LARGE_TESTS, "no test twice");

    // Cancelling a group of long tests ends every member and frees every venv.
    let slow_case = define(&lab, "slow", SLOW_SUITE, json!({})).await;
    // An env the test case does not let runs set is refused, and nothing starts.
    let refused = cli(
        &lab,
        &[
            "group",
            "start",
            &slow_case.to_string(),
            "--matrix-env",
            "UNUSED=1",
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("env_not_overridable"),
        "{refused:?}"
    );
    let slow = cli(
        &lab,
        &[
            "group",
            "start",
            &slow_case.to_string(),
            "--matrix-labels",
            "linux",
            "--matrix-labels",
            "lab",
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(slow.status.success(), "{slow:?}");
    let slow_id = String::from_utf8(slow.stdout).unwrap().trim().to_owned();
    eventually(Duration::from_secs(60), "both members running", || async {
        let shown = show_group(&lab, &slow_id).await;
        let members = shown["members"].as_array()?;
        (members.len() == 2 && members.iter().all(|m| m["status"] == "running")).then_some(())
    })
    .await;
    let cancelled = cli(&lab, &["group", "cancel", &slow_id, "--reason", "enough"])
        .output()
        .await
        .unwrap();
    assert!(cancelled.status.success(), "{cancelled:?}");
    eventually(Duration::from_secs(60), "the group cancelled", || async {
        let shown = show_group(&lab, &slow_id).await;
        let members = shown["members"].as_array()?;
        let all_cancelled = members.iter().all(|m| m["status"] == "cancelled");
        (shown["group"]["status"] == "cancelled" && all_cancelled).then_some(())
    })
    .await;
    eventually(Duration::from_secs(60), "every venv free again", || async {
        let venvs = runledger_readmodel::lab::venvs(&lab.db.pool).await.ok()?;
        let free = venvs.iter().filter(|v| v.status.as_str() == "free").count();
        (free == VENVS).then_some(())
    })
    .await;

    shutdown.cancel();
    let _ = executor.await;
    projector.stop().await;
    handler.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    lab.cleanup().await;
}

const EIGHT_SECONDS: &str = "\
import time


def test_eight_seconds():
    time.sleep(8)
";

/// An executor process (`runledger serve --components executor`) named `name`, with leases of
/// 4 s so that a killed one's runs are noticed soon.
fn executor_process(lab: &TestLab, name: &str) -> tokio::process::Child {
    lab.runledger(runledger_binary())
        .args(["serve", "--components", "executor"])
        .env("RUNLEDGER_EXECUTOR_NAME", name)
        .env("RUNLEDGER_EXECUTOR_LEASE_S", "4")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start `runledger serve --components executor`")
}

/// An executor killed with SIGKILL while it runs both members of a group: their leases expire,
/// each is retried (its test case allows one retry) on the executor started after, and the group
/// ends `passed` with both members on their second attempt and every venv free again. Nothing
/// waits forever and nothing is reported passed that did not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_whose_executor_is_killed_mid_run_still_ends_honestly() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler_with_lease(Duration::from_secs(4)).await;
    let projector = lab.start_projector(1000).await;
    let sshd = TestSshd::start();
    let client = lab.client();
    let mut victim = executor_process(&lab, "victim");

    client.register_admin(ADMIN).await;
    let machine_id = client.register_sshd_machine(ADMIN, &sshd).await;
    let labels = json!({"machine_id": machine_id, "labels": ["linux", "lab"]});
    assert!(client.send("update_machine", ADMIN, labels).await.accepted);
    for n in 0..2 {
        let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id,
                          "name": format!("k{n}{}", &Uuid::now_v7().simple().to_string()[24..]),
                          "python": "/usr/bin/python3", "requirements": ["pytest"]});
        assert!(client.send("add_venv", ADMIN, venv).await.accepted);
    }
    eventually(PROVISION_WAIT, "both venvs provisioned", || async {
        let venvs = runledger_readmodel::lab::venvs(&lab.db.pool).await.ok()?;
        (venvs.iter().filter(|v| v.status.as_str() == "free").count() == 2).then_some(())
    })
    .await;
    let test_case_id = define(&lab, "eight seconds", EIGHT_SECONDS, json!({"retries": 1})).await;
    let started = cli(
        &lab,
        &[
            "group",
            "start",
            &test_case_id.to_string(),
            "--matrix-labels",
            "linux",
            "--matrix-labels",
            "lab",
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(started.status.success(), "{started:?}");
    let group_id = String::from_utf8(started.stdout).unwrap().trim().to_owned();
    eventually(Duration::from_secs(60), "both members running", || async {
        let shown = show_group(&lab, &group_id).await;
        let members = shown["members"].as_array()?;
        (members.len() == 2 && members.iter().all(|m| m["status"] == "running")).then_some(())
    })
    .await;

    victim.start_kill().unwrap();
    let _ = victim.wait().await;
    let mut rescuer = executor_process(&lab, "rescuer");
    let shown = eventually(Duration::from_secs(90), "the group to end", || async {
        let shown = show_group(&lab, &group_id).await;
        (shown["group"]["status"] != "running").then_some(shown)
    })
    .await;
    assert_eq!(shown["group"]["status"], "passed", "{shown:#}");
    for member in shown["members"].as_array().unwrap() {
        assert_eq!(member["status"], "passed", "{member:#}");
        assert_eq!(member["attempt"], 2, "retried once: {member:#}");
        assert_eq!(member["executor"], "rescuer", "{member:#}");
    }
    eventually(Duration::from_secs(30), "both venvs free again", || async {
        let venvs = runledger_readmodel::lab::venvs(&lab.db.pool).await.ok()?;
        (venvs.iter().filter(|v| v.status.as_str() == "free").count() == 2).then_some(())
    })
    .await;

    rescuer.start_kill().unwrap();
    let _ = rescuer.wait().await;
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
