//! The executor service end to end: handler, NATS, a real sshd; a venv provisioned, a run that
//! passes with its output and JUnit summary, a run cancelled mid-way, a run on an unreachable
//! machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_executor::{ExecutorSettings, run};
use runledger_test_support::{CommandClient, TestLab, TestSshd, eventually};
use runledger_types::{EventRecord, Outcome};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ADMIN: &str = "admin";
const WAIT: Duration = Duration::from_secs(20);
/// Provisioning a real venv (pip included) over SSH takes most of a loaded core for seconds,
/// and the tests of this file provision at once.
const PROVISION_WAIT: Duration = Duration::from_secs(120);

fn accepted(outcome: Outcome) -> Outcome {
    assert!(outcome.accepted, "expected acceptance, got {outcome:?}");
    outcome
}

async fn events(lab: &TestLab) -> Vec<EventRecord> {
    lab.store.read_after(0, 10_000).await.expect("read the log")
}

/// The `run_finished` event of `run_id`, once it is in the log.
async fn finished(lab: &TestLab, run_id: Uuid) -> Value {
    eventually(WAIT, "run_finished", || async {
        events(lab).await.into_iter().find_map(|e| {
            (e.event_type == "run_finished" && e.data["run_id"] == json!(run_id)).then_some(e.data)
        })
    })
    .await
}

async fn define(client: &CommandClient, command: &str, junit: Option<&str>) -> Uuid {
    let test_case_id = Uuid::now_v7();
    let mut payload = json!({"test_case_id": test_case_id, "name": format!("tc-{test_case_id}"),
                             "command": command, "timeout_s": 60});
    if let Some(junit) = junit {
        payload["junit_xml"] = json!(junit);
    }
    accepted(client.send("define_test_case", ADMIN, payload).await);
    test_case_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provisions_runs_and_cancels_over_ssh() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let sshd = TestSshd::start();
    let client = lab.client();

    let shutdown = CancellationToken::new();
    let mut settings = ExecutorSettings::new("e2e", lab.nats.names.clone(), lab.keyring.clone());
    settings.shutdown_grace = Duration::from_secs(5);
    let executor = tokio::spawn(run(lab.nats.client.clone(), settings, shutdown.clone()));

    client.register_admin(ADMIN).await;
    let machine_id = client.register_sshd_machine(ADMIN, &sshd).await;
    client.add_venv(ADMIN, machine_id, "/usr/bin/python3").await;
    eventually(PROVISION_WAIT, "venv_provisioned", || async {
        let log = events(&lab).await;
        let failed = log
            .iter()
            .find(|e| e.event_type == "venv_provisioning_failed");
        assert!(failed.is_none(), "provisioning failed: {failed:?}");
        log.iter()
            .any(|e| e.event_type == "venv_provisioned")
            .then_some(())
    })
    .await;

    let junit = r#"<testsuite name="s" tests="1"><testcase name="t" classname="c" time="0.01"/></testsuite>"#;
    let command = format!(
        "echo out-1; echo err-1 >&2; sleep 0.3; echo out-2; printf '%s' '{junit}' > report.xml"
    );
    let passing = define(&client, &command, Some("report.xml")).await;
    let run_id = Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": passing, "machine_id": machine_id});
    accepted(client.send("start_run", ADMIN, start).await);
    let end = finished(&lab, run_id).await;
    assert_eq!(end["status"], "passed", "{end}");
    assert_eq!(end["summary"]["passed"], 1, "{end}");
    let log = events(&lab).await;
    let output: Vec<(String, String)> = log
        .iter()
        .filter(|e| e.event_type == "run_output" && e.data["run_id"] == json!(run_id))
        .map(|e| {
            let stream = e.data["stream"].as_str().unwrap().to_owned();
            (stream, e.data["text"].as_str().unwrap().to_owned())
        })
        .collect();
    let stdout: String = output
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, t)| t.as_str())
        .collect();
    let stderr: String = output
        .iter()
        .filter(|(s, _)| s == "stderr")
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(stdout, "out-1\nout-2\n", "{output:?}");
    assert_eq!(stderr, "err-1\n", "{output:?}");
    let seqs: Vec<u64> = log
        .iter()
        .filter(|e| e.event_type == "run_output" && e.data["run_id"] == json!(run_id))
        .map(|e| e.data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let pinned = log
        .iter()
        .find(|e| e.event_type == "host_key_pinned")
        .expect("pinned");
    assert_eq!(pinned.data["fingerprint"], json!(sshd.host_key_fingerprint));
    assert!(
        log.iter()
            .any(|e| e.event_type == "run_started" && e.actor == "executor:e2e")
    );

    let sleeping = define(&client, "echo started; sleep 30", None).await;
    let run_id = Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": sleeping, "machine_id": machine_id});
    accepted(client.send("start_run", ADMIN, start).await);
    eventually(WAIT, "the sleeping run's output", || async {
        events(&lab)
            .await
            .iter()
            .any(|e| e.event_type == "run_output" && e.data["run_id"] == json!(run_id))
            .then_some(())
    })
    .await;
    let cancel = json!({"run_id": run_id});
    accepted(client.send("cancel_run", ADMIN, cancel).await);
    let end = finished(&lab, run_id).await;
    assert_eq!(end["status"], "cancelled", "{end}");

    // The machine moves to a port nobody listens on: the next run ends `error`, unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let update = json!({"machine_id": machine_id, "port": closed_port});
    accepted(client.send("update_machine", ADMIN, update).await);
    let run_id = Uuid::now_v7();
    let start = json!({"run_id": run_id, "test_case_id": passing, "machine_id": machine_id});
    accepted(client.send("start_run", ADMIN, start).await);
    let end = finished(&lab, run_id).await;
    assert_eq!(end["status"], "error", "{end}");
    assert_eq!(end["error_code"], "ssh_unreachable", "{end}");

    shutdown.cancel();
    executor.await.unwrap().unwrap();
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_machine_presenting_another_key_than_its_pin_gets_no_credential() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let sshd = TestSshd::start();
    let client = lab.client();
    let shutdown = CancellationToken::new();
    let settings = ExecutorSettings::new("pinned", lab.nats.names.clone(), lab.keyring.clone());
    let executor = tokio::spawn(run(lab.nats.client.clone(), settings, shutdown.clone()));

    let user = json!({"username": ADMIN, "role": "admin", "password": "admin-password"});
    accepted(client.send("register_user", "bootstrap", user).await);
    let machine_id = Uuid::now_v7();
    let pin = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let machine = json!({"machine_id": machine_id, "name": "sshd", "host": sshd.host,
                         "port": sshd.port, "username": sshd.username, "password": sshd.password,
                         "host_key": pin});
    accepted(client.send("register_machine", ADMIN, machine).await);
    let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id, "name": "v",
                      "python": "/usr/bin/python3"});
    accepted(client.send("add_venv", ADMIN, venv).await);
    let failed = eventually(WAIT, "venv_provisioning_failed", || async {
        events(&lab)
            .await
            .into_iter()
            .find(|e| e.event_type == "venv_provisioning_failed")
    })
    .await;
    let reason = failed.data["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("host key mismatch"), "{reason}");
    assert!(reason.contains(&sshd.host_key_fingerprint), "{reason}");
    eventually(WAIT, "the sshd logs the connection's end", || async {
        (sshd.connections_closed() >= 1).then_some(())
    })
    .await;
    let attempts = sshd.auth_attempts();
    assert!(attempts.is_empty(), "{attempts:?}\n{}", sshd.log());

    shutdown.cancel();
    executor.await.unwrap().unwrap();
    handler.stop().await;
    lab.cleanup().await;
}
