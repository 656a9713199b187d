//! Crash safety with real processes: an executor killed with `kill -9` mid-run. The handler's
//! lease watch ends the run `error` (`executor_lost`) and frees the venv, or retries it when the
//! test case allows; a restarted executor under the same name ends the processes the dead one
//! left on the machine, and reports the runs it still held; when it never comes back, another
//! executor ends them once the run has ended.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{
    CommandClient, RunningHandler, TestLab, TestSshd, eventually, runledger_binary,
};
use runledger_types::{EventRecord, Outcome};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Child;
use uuid::Uuid;

const ADMIN: &str = "admin";
const WAIT: Duration = Duration::from_secs(30);
/// Provisioning a real venv (pip included) over SSH takes most of a loaded core for seconds,
/// and the tests of this file provision at once.
const PROVISION_WAIT: Duration = Duration::from_secs(120);

fn accepted(outcome: Outcome) -> Outcome {
    assert!(outcome.accepted, "expected acceptance, got {outcome:?}");
    outcome
}

async fn events(lab: &TestLab) -> Vec<EventRecord> {
    lab.store
        .read_after(0, 100_000)
        .await
        .expect("read the log")
}

/// The first event of `event_type` about `run_id` (after position `after`), once in the log.
async fn event_of(lab: &TestLab, event_type: &str, run_id: Uuid, after: i64) -> EventRecord {
    eventually(WAIT, event_type, || async {
        events(lab).await.into_iter().find(|e| {
            e.position > after && e.event_type == event_type && e.data["run_id"] == json!(run_id)
        })
    })
    .await
}

/// `runledger serve --components executor` named `name`, as its own process.
fn executor(lab: &TestLab, name: &str) -> Child {
    lab.runledger(runledger_binary())
        .args(["serve", "--components", "executor"])
        .env("RUNLEDGER_EXECUTOR_NAME", name)
        // Heartbeats every half second.
        .env("RUNLEDGER_EXECUTOR_LEASE_S", "3")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the executor")
}

/// `kill -9`.
async fn kill_9(mut child: Child) {
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
}

/// How many processes carry `RUNLEDGER_RUN_ID=<run_id>` in their environment.
fn processes_of(run_id: Uuid) -> usize {
    let wanted = format!("RUNLEDGER_RUN_ID={run_id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| std::fs::read(entry.path().join("environ")).ok())
        .filter(|environ| {
            environ
                .split(|byte| *byte == 0)
                .any(|var| var == wanted.as_bytes())
        })
        .count()
}

struct Setup {
    lab: TestLab,
    client: CommandClient,
    sshd: TestSshd,
    machine_id: Uuid,
    venv_id: Uuid,
}

/// A handler whose leases last `lease`, a machine on a fresh sshd and a venv provisioned by
/// an executor process `name`; the handler and the executor are returned running.
async fn setup(lease: Duration, name: &str) -> (Setup, RunningHandler, Child) {
    let lab = TestLab::create().await;
    let handler = lab.start_handler_with_lease(lease).await;
    let sshd = TestSshd::start();
    let client = lab.client();
    client.register_admin(ADMIN).await;
    let machine_id = client.register_sshd_machine(ADMIN, &sshd).await;
    let venv_id = client.add_venv(ADMIN, machine_id, "/usr/bin/python3").await;
    let child = executor(&lab, name);
    eventually(PROVISION_WAIT, "venv_provisioned", || async {
        events(&lab)
            .await
            .iter()
            .any(|e| e.event_type == "venv_provisioned")
            .then_some(())
    })
    .await;
    let setup = Setup {
        lab,
        client,
        sshd,
        machine_id,
        venv_id,
    };
    (setup, handler, child)
}

impl Setup {
    /// Defines `echo started; sleep 60` with `retries` and starts a run of it; returns the run
    /// once its first output is in the log.
    async fn start_sleeper(&self, retries: u32) -> Uuid {
        let test_case_id = Uuid::now_v7();
        let test_case = json!({"test_case_id": test_case_id, "name": format!("tc-{test_case_id}"),
                               "command": "echo started; sleep 60", "timeout_s": 120,
                               "retries": retries});
        accepted(self.client.send("define_test_case", ADMIN, test_case).await);
        let run_id = Uuid::now_v7();
        let start = json!({"run_id": run_id, "test_case_id": test_case_id,
                           "machine_id": self.machine_id});
        accepted(self.client.send("start_run", ADMIN, start).await);
        event_of(&self.lab, "run_output", run_id, 0).await;
        run_id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_executor_loses_its_run_frees_the_venv_and_its_successor_cleans_up() {
    // Heartbeats come every half second: a lease of 4 s leaves room for a loaded CI machine.
    let lease = Duration::from_secs(4);
    let (setup, handler, doomed) = setup(lease, "doomed").await;
    let lab = &setup.lab;

    // 1. No retries: the run ends `error` (`executor_lost`) and its venv is released.
    let run_id = setup.start_sleeper(0).await;
    // The command's shell and its sleep, with `setsid` waiting for them.
    let per_attempt = processes_of(run_id);
    assert!(per_attempt >= 2, "the sleep runs on the machine");
    kill_9(doomed).await;
    let end = event_of(lab, "run_finished", run_id, 0).await;
    assert_eq!(end.data["status"], "error", "{}", end.data);
    assert_eq!(end.data["error_code"], "executor_lost", "{}", end.data);
    assert_eq!(end.actor, "system:lease-watch");
    let released = events(lab).await.into_iter().any(|e| {
        e.position > end.position
            && e.event_type == "venv_released"
            && e.data["venv_id"] == json!(setup.venv_id)
    });
    assert!(released, "the venv is released with the run's end");
    assert_eq!(
        processes_of(run_id),
        per_attempt,
        "the dead executor's processes are left"
    );

    // 2. The executor comes back under its name and ends what its predecessor left.
    let doomed = executor(lab, "doomed");
    eventually(WAIT, "the leftover process to end", || async {
        (processes_of(run_id) == 0).then_some(())
    })
    .await;

    // 3. With a retry left, the lost attempt is queued again and a second executor runs it,
    //    numbering its output after the first attempt's.
    let run_id = setup.start_sleeper(1).await;
    kill_9(doomed).await;
    let requeued = eventually(WAIT, "run_queued again", || async {
        events(lab).await.into_iter().find(|e| {
            e.event_type == "run_queued"
                && e.data["run_id"] == json!(run_id)
                && e.data["reason"].as_str().unwrap_or("").contains("retrying")
        })
    })
    .await;
    let other = executor(lab, "other");
    let assigned = event_of(lab, "run_assigned", run_id, requeued.position).await;
    assert_eq!(assigned.data["attempt"], 2);
    let started = event_of(lab, "run_started", run_id, assigned.position).await;
    assert_eq!(started.actor, "executor:other");
    let output = event_of(lab, "run_output", run_id, started.position).await;
    assert!(
        output.data["seq"].as_u64().unwrap() > 1 << 32,
        "{}",
        output.data
    );
    // The second attempt began by ending the first one's leftovers.
    eventually(WAIT, "one attempt's processes", || async {
        (processes_of(run_id) == per_attempt).then_some(())
    })
    .await;
    let cancel = json!({"run_id": run_id});
    accepted(setup.client.send("cancel_run", ADMIN, cancel).await);
    let end = event_of(lab, "run_finished", run_id, 0).await;
    assert_eq!(end.data["status"], "cancelled", "{}", end.data);
    eventually(WAIT, "no process of the run", || async {
        (processes_of(run_id) == 0).then_some(())
    })
    .await;

    kill_9(other).await;
    handler.stop().await;
    drop(setup.sshd);
    setup.lab.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_executor_ends_what_a_lost_executor_left_on_the_machine() {
    let lease = Duration::from_secs(4);
    let (setup, handler, doomed) = setup(lease, "gone").await;
    let lab = &setup.lab;
    let run_id = setup.start_sleeper(0).await;
    assert!(processes_of(run_id) >= 2, "the sleep runs on the machine");
    // Another executor, started once the run is taken; the lost one never comes back.
    let survivor = executor(lab, "survivor");
    kill_9(doomed).await;
    let end = event_of(lab, "run_finished", run_id, 0).await;
    assert_eq!(end.data["error_code"], "executor_lost", "{}", end.data);
    eventually(WAIT, "the leftover processes to end", || async {
        (processes_of(run_id) == 0).then_some(())
    })
    .await;
    kill_9(survivor).await;
    handler.stop().await;
    drop(setup.sshd);
    setup.lab.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_executor_restarted_within_its_lease_reports_the_run_it_held() {
    // A lease far longer than the test: only the restarted executor can end the run.
    let lease = Duration::from_secs(600);
    let (setup, handler, doomed) = setup(lease, "phoenix").await;
    let lab = &setup.lab;
    let run_id = setup.start_sleeper(0).await;
    kill_9(doomed).await;
    let phoenix = executor(lab, "phoenix");
    let end = event_of(lab, "run_finished", run_id, 0).await;
    assert_eq!(end.data["status"], "error", "{}", end.data);
    assert_eq!(end.data["error_code"], "executor_lost", "{}", end.data);
    assert_eq!(end.actor, "executor:phoenix");
    assert!(
        end.data["reason"].as_str().unwrap().contains("restarted"),
        "{}",
        end.data
    );
    eventually(WAIT, "the leftover process to end", || async {
        (processes_of(run_id) == 0).then_some(())
    })
    .await;
    kill_9(phoenix).await;
    handler.stop().await;
    drop(setup.sshd);
    setup.lab.cleanup().await;
}
