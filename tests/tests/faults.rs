//! The fault suite: the service keeps its promises while its parts crash. The test owns a
//! Postgres cluster and a nats-server (so it may kill them), runs two `runledger serve`
//! processes (`steady`: handler, projector, executor, gateway; `victim`: handler, executor) and a
//! steady stream of `start_run` over a local machine, and in turn
//!
//! 1. kills `victim` with SIGKILL and starts it again under the same name,
//! 2. stops Postgres with `-m immediate` (a crash) and starts it again,
//! 3. kills nats-server with SIGKILL while a run is in the middle of its output, and starts it
//!    again on the same store.
//!
//! Then, from the log and from what the bus acknowledged: every acked command took effect exactly
//! once, every run ended once, no venv was held by two runs and every venv is free, the read
//! models equal a rebuild from the log, the hash chain verifies, `steady` was never restarted and
//! still serves, and the run that was writing output when NATS died has all of it, once, in
//! order. docs/reliability.md describes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "faults/checks.rs"]
mod checks;
#[path = "faults/load.rs"]
mod load;
#[path = "faults/services.rs"]
mod services;

use checks::{
    attempts_of, dump_read_models, ends, exactly_once, output_of, story, venv_leases, whole_log,
};
use load::{Load, LoadPlan};
use runledger_test_support::{CommandClient, TestLab, eventually, runledger_binary};
use serde_json::json;
use services::{Serve, World};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

const ADMIN: &str = "admin";
const VENVS: usize = 4;
/// What each run of the load prints, a tenth of a second apart.
const QUICK_TEXT: &str = "quick 1\nquick 2\nquick 3\nquick 4\nquick 5\n";
/// Lines the run that is cut off from NATS prints, a tenth of a second apart.
const COUNTER_LINES: usize = 60;
/// How long each outage lasts.
const OUTAGE: Duration = Duration::from_secs(3);
/// Bound on starting newly assigned runs again once NATS is back: the executors' events feed
/// must notice its consumer died with the server (docs/reliability.md).
const WORK_RESUMES: Duration = Duration::from_secs(12);
/// Bound on handling every acked command and ending every run once the load stops (a command
/// held by the killed handler comes back after the commands consumer's 30 s ack wait).
const DRAIN: Duration = Duration::from_secs(120);
/// Bound on getting back to work after a fault.
const RECOVERY: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_of_a_process_postgres_and_nats_lose_and_double_nothing() {
    let began = Instant::now();
    let mut world = World::start().await;
    let mut steady = Serve::start(&world, "steady", "handler,projector,executor,gateway").await;
    let mut victim = Serve::start(&world, "victim", "handler,executor").await;
    let lab = &world.lab;
    let client = lab.client();
    let lab_ids = build_lab(lab, &client, &world.home.0).await;
    println!("{:?}: lab ready", began.elapsed());

    let load = Load::start(
        lab,
        LoadPlan {
            test_case_id: lab_ids.quick,
            machine_id: lab_ids.machine,
            every: Duration::from_millis(400),
        },
    );
    progress(lab, "the first runs", 5).await;

    // 1. A handler+executor process dies without a word in the middle of a run, and comes back
    //    under its name; the run it held is retried.
    let held = victim_mid_run(lab).await;
    victim.kill_and_restart(&world).await;
    retried_after_kill(lab, held).await;
    let victim_back = head(lab).await;
    progress(lab, "runs after the victim's restart", 5).await;
    steady.assert_running("after the victim was killed");
    println!("{:?}: victim killed and restarted", began.elapsed());

    // 2. Postgres crashes and comes back (crash recovery).
    let before_pg = head(lab).await;
    world.postgres.crash();
    tokio::time::sleep(OUTAGE).await;
    world.postgres.start_again();
    progress(lab, "runs after the Postgres crash", 5).await;
    steady.assert_running("after the Postgres crash");
    println!("{:?}: Postgres crashed and restarted", began.elapsed());

    // 3. NATS dies while a run is printing; it comes back on the same store.
    let counter_run = Uuid::now_v7();
    let start = json!({"run_id": counter_run, "test_case_id": lab_ids.counter,
                       "machine_id": lab_ids.machine});
    client.accept("start_run", ADMIN, start).await;
    let first_output = eventually(RECOVERY, "the counter run's first output", || async {
        let log = whole_log(&lab.store).await;
        let chunks = log
            .iter()
            .filter(|e| e.event_type == "run_output" && e.data["run_id"] == json!(counter_run));
        chunks.map(|e| e.position).next()
    })
    .await;
    world.nats.kill();
    let nats_died = head(lab).await;
    tokio::time::sleep(OUTAGE).await;
    world.nats.restart();
    let resumed = work_resumes(lab).await;
    progress(lab, "runs after the NATS restart", 5).await;
    let nats_back = head(lab).await;
    println!(
        "{:?}: NATS killed and restarted; work resumed {resumed:?} after",
        began.elapsed()
    );
    assert!(
        resumed <= WORK_RESUMES,
        "the executors took {resumed:?} to start a newly assigned run after NATS came back"
    );

    let sent = load.stop().await;
    drain(lab, &sent).await;
    println!("{:?}: every run ended", began.elapsed());

    // The processes that were not killed never stopped, and serve.
    steady.assert_running("at the end");
    victim.assert_running("since its restart");
    let base = steady.base().expect("steady runs the gateway");
    for path in ["/healthz", "/readyz"] {
        let status = reqwest::get(format!("{base}{path}"))
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "steady's {path} answers {status}");
    }
    let log = whole_log(&lab.store).await;
    let started_by = |actor: &str, after: i64| {
        log.iter()
            .any(|e| e.event_type == "run_started" && e.actor == actor && e.position > after)
    };
    assert!(
        started_by("executor:steady", nats_back),
        "steady's executor ran nothing after the last fault"
    );
    assert!(
        started_by("executor:victim", victim_back),
        "the restarted victim ran nothing"
    );

    // Exactly once; every run ended, passed, with all of its output once, in order; no venv
    // held twice and none held now.
    exactly_once(&lab.db.pool, &log, &sent).await;
    let ends = ends(&log);
    let mut retried = Vec::new();
    for event in log.iter().filter(|e| e.event_type == "run_requested") {
        let run: Uuid = event.data["run_id"].as_str().unwrap().parse().unwrap();
        let end = ends
            .get(&run)
            .unwrap_or_else(|| panic!("run {run} never ended"));
        assert_eq!(
            end.data["status"],
            "passed",
            "run {run} did not pass (the victim held {held}):\n{}",
            story(&log, run)
        );
        let attempts = attempts_of(&log, run);
        if attempts > 1 {
            retried.push(run);
        }
        let expected = if run == counter_run {
            counter_text()
        } else {
            QUICK_TEXT.to_owned()
        };
        let output = output_of(&log, run);
        let last = output.get(&attempts).map(|(text, _)| text.as_str());
        assert_eq!(
            last,
            Some(expected.as_str()),
            "the output of run {run}'s last attempt ({attempts}) has a gap:\n{}",
            story(&log, run)
        );
    }
    assert!(
        retried.contains(&held),
        "the run the victim held ({held}) was not retried"
    );
    // Retries come from the victim's death only: no other fault made an attempt look lost.
    for queued in log.iter().filter(|e| e.event_type == "run_queued") {
        let reason = queued.data["reason"].as_str().unwrap_or("");
        if reason.starts_with("retrying") {
            assert!(
                reason.contains("executor lost: victim") && queued.position < before_pg,
                "a retry the victim's death does not explain, at {}: {}",
                queued.position,
                queued.data
            );
        }
    }
    let leases = venv_leases(&log);
    let acked = sent.iter().filter(|s| s.acked).count();
    println!(
        "{} start_run sent, {acked} acked, {} runs passed ({} retried), {leases} venv leases",
        sent.len(),
        ends.len(),
        retried.len()
    );

    // The counter run was in the middle of its output when NATS died, and went on after.
    assert_eq!(
        attempts_of(&log, counter_run),
        1,
        "the NATS outage cost the counter run its attempt"
    );
    let output = output_of(&log, counter_run);
    let positions = &output.get(&1).expect("the counter's output").1;
    assert!(
        positions.first() == Some(&first_output) && positions.iter().any(|&p| p > nats_died),
        "the counter run was not mid-output when NATS died"
    );

    // Stopped gracefully, the log is quiet: the read models equal a rebuild from it.
    for serve in [&mut victim, &mut steady] {
        let status = serve.terminate().await;
        assert!(
            status.success(),
            "{} exited {status:?}:\n{}",
            serve.name,
            serve.log_tail()
        );
    }
    read_models_equal_the_log(lab).await;
    chain_verifies(lab).await;
    println!("{:?}: all checks passed", began.elapsed());
    drop((steady, victim));
    drop(world);
    println!("{:?}: cleaned up", began.elapsed());
}

/// A run the victim's executor is running, early in its output (so it is still running a moment
/// later, when the victim is killed).
async fn victim_mid_run(lab: &TestLab) -> Uuid {
    eventually(
        RECOVERY,
        "the victim to be in the middle of a run",
        || async {
            let run: Option<String> = sqlx::query_scalar(
                "SELECT s.data->>'run_id' FROM events s WHERE s.type = 'run_started' \
             AND s.actor = 'executor:victim' \
             AND NOT EXISTS (SELECT 1 FROM events f WHERE f.type = 'run_finished' \
                             AND f.data->>'run_id' = s.data->>'run_id') \
             AND (SELECT count(*) FROM events o WHERE o.type = 'run_output' \
                  AND o.data->>'run_id' = s.data->>'run_id') BETWEEN 1 AND 4 \
             ORDER BY s.position DESC LIMIT 1",
            )
            .fetch_optional(&lab.db.pool)
            .await
            .ok()?;
            run?.parse().ok()
        },
    )
    .await
}

fn counter_text() -> String {
    (1..=COUNTER_LINES).map(|n| format!("line {n}\n")).collect()
}

/// What the load and the counter run need.
struct LabIds {
    machine: Uuid,
    quick: Uuid,
    counter: Uuid,
}

/// An admin, a local machine with provisioned venvs, and two test cases: a quick one for the
/// load, and a counter that prints numbered lines for a few seconds.
async fn build_lab(lab: &TestLab, client: &CommandClient, home: &Path) -> LabIds {
    client.register_admin(ADMIN).await;
    let machine = client.register_local_machine(ADMIN).await;
    // Venvs without pip (nothing is installed in them): `python -m venv` with pip takes seconds
    // of CPU each, and provisioning is not what this test is about.
    let bare = home.join("bin/python3-bare");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    std::fs::write(&bare, "#!/bin/sh\nexec python3 \"$@\" --without-pip\n").unwrap();
    std::fs::set_permissions(&bare, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for _ in 0..VENVS {
        client.add_venv(ADMIN, machine, "~/bin/python3-bare").await;
    }
    eventually(
        Duration::from_secs(120),
        "the venvs to be provisioned",
        || async {
            let log = whole_log(&lab.store).await;
            if let Some(failed) = log
                .iter()
                .find(|e| e.event_type == "venv_provisioning_failed")
            {
                panic!("a venv failed to provision: {}", failed.data);
            }
            let ready = log
                .iter()
                .filter(|e| e.event_type == "venv_provisioned")
                .count();
            (ready == VENVS).then_some(())
        },
    )
    .await;
    let (quick, counter) = (Uuid::now_v7(), Uuid::now_v7());
    let define = |id: Uuid, name: &str, command: String| {
        json!({"test_case_id": id, "name": name, "command": command, "timeout_s": 120,
               "retries": 1})
    };
    // A second per run: long enough that a loaded machine still catches one mid-output.
    let quick_command = "for i in 1 2 3 4 5; do echo \"quick $i\"; sleep 0.2; done".to_owned();
    let counter_command =
        format!("for i in $(seq 1 {COUNTER_LINES}); do echo \"line $i\"; sleep 0.1; done");
    client
        .accept(
            "define_test_case",
            ADMIN,
            define(quick, "quick", quick_command),
        )
        .await;
    client
        .accept(
            "define_test_case",
            ADMIN,
            define(counter, "counter", counter_command),
        )
        .await;
    LabIds {
        machine,
        quick,
        counter,
    }
}

async fn head(lab: &TestLab) -> i64 {
    eventually(RECOVERY, "the log's head", || async {
        lab.store.head().await.ok()
    })
    .await
}

async fn finished(lab: &TestLab) -> Option<i64> {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'run_finished'")
        .fetch_one(&lab.db.pool)
        .await
        .ok()
}

/// Waits until `more` runs have finished after this call: the service is back at work.
async fn progress(lab: &TestLab, what: &str, more: i64) {
    let before = eventually(RECOVERY, "the database to answer", || finished(lab)).await;
    eventually(RECOVERY, what, || async {
        finished(lab).await.filter(|&now| now >= before + more)
    })
    .await;
}

/// Waits until the run the killed victim held is queued again for its retry.
async fn retried_after_kill(lab: &TestLab, held: Uuid) {
    eventually(RECOVERY, "the victim's run to be queued again", || async {
        let queued: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE type = 'run_queued' \
             AND data->>'run_id' = $1 AND data->>'reason' LIKE 'retrying%'",
        )
        .bind(held.to_string())
        .fetch_one(&lab.db.pool)
        .await
        .ok()?;
        (queued > 0).then_some(())
    })
    .await;
}

/// How long until a run assigned from now on is started: executors take work again.
async fn work_resumes(lab: &TestLab) -> Duration {
    let since = Instant::now();
    let after = head(lab).await;
    eventually(RECOVERY, "a newly assigned run to start", || async {
        let started: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events s JOIN events a ON a.type = 'run_assigned' \
             AND a.data->>'run_id' = s.data->>'run_id' AND a.position > $1 \
             WHERE s.type = 'run_started' AND s.position > $1",
        )
        .bind(after)
        .fetch_one(&lab.db.pool)
        .await
        .ok()?;
        (started > 0).then_some(())
    })
    .await;
    since.elapsed()
}

/// Waits until every acked command is handled and every requested run has ended; fails naming
/// the commands still missing and telling the story of the runs still open.
async fn drain(lab: &TestLab, sent: &[load::Sent]) {
    let acked: Vec<Uuid> = sent
        .iter()
        .filter(|s| s.acked)
        .map(|s| s.command_id.0)
        .collect();
    let deadline = Instant::now() + DRAIN;
    loop {
        let (missing, open) = unfinished(lab, &acked).await;
        if missing.is_empty() && open.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let log = whole_log(&lab.store).await;
            let stories: Vec<String> = open.iter().map(|run| story(&log, *run)).collect();
            panic!(
                "after {DRAIN:?}, acked start_run commands never handled: {missing:?}; \
                 runs never ended:\n{}",
                stories.join("\n--\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The acked commands not in the `commands` table, and the requested runs without an end (both
/// empty while the database does not answer).
async fn unfinished(lab: &TestLab, acked: &[Uuid]) -> (Vec<Uuid>, Vec<Uuid>) {
    let handled: Vec<Uuid> =
        sqlx::query_scalar("SELECT command_id FROM commands WHERE command_id = ANY($1)")
            .bind(acked)
            .fetch_all(&lab.db.pool)
            .await
            .unwrap_or_else(|_| acked.to_vec());
    let missing = acked
        .iter()
        .filter(|id| !handled.contains(id))
        .copied()
        .collect();
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT r.data->>'run_id' FROM events r WHERE r.type = 'run_requested' AND NOT EXISTS \
         (SELECT 1 FROM events f WHERE f.type = 'run_finished' \
          AND f.data->>'run_id' = r.data->>'run_id')",
    )
    .fetch_all(&lab.db.pool)
    .await
    .unwrap_or_default();
    let open = open.iter().filter_map(|run| run.parse().ok()).collect();
    (missing, open)
}

/// A projector finishes the tail of the log the stopped `steady` left; then the read models
/// must equal a rebuild of them from the whole log, and every venv must be free in them.
async fn read_models_equal_the_log(lab: &TestLab) {
    let projector = lab.start_projector(500).await;
    let head = lab.store.head().await.unwrap();
    eventually(RECOVERY, "the read models to reach the head", || async {
        let at = runledger_readmodel::projected_position(&lab.db.pool)
            .await
            .ok()?;
        (at >= head).then_some(())
    })
    .await;
    projector.stop().await;
    let incremental = dump_read_models(&lab.db.pool).await;
    let venvs = incremental["rm_venvs.venvs"].as_array().unwrap();
    assert_eq!(venvs.len(), VENVS);
    for venv in venvs {
        assert_eq!(venv["status"], "free", "{venv}");
    }
    let report = runledger_projections::rebuild(&lab.db.pool, &runledger_readmodel::ALL, |_| {})
        .await
        .unwrap();
    assert_eq!(report.position, head);
    assert!(
        dump_read_models(&lab.db.pool).await == incremental,
        "the read models built through the faults differ from a rebuild from the log"
    );
}

/// `runledger audit verify` over the whole log.
async fn chain_verifies(lab: &TestLab) {
    let output = lab
        .runledger(runledger_binary())
        .args(["audit", "verify"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the hash chain does not verify: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
