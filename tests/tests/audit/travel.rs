//! Time travel: `runledger audit state --at <position | time> (run | venv | pool) <id>` shows
//! what the lab looked like then, folded with the domain's own `evolve`.

use super::History;
use super::cli::run;
use chrono::SecondsFormat;
use runledger_test_support::TestLab;
use runledger_types::Outcome;
use serde_json::Value;

/// `audit state --at <at> <what> <id>`, which must succeed.
async fn state(lab: &TestLab, at: &str, what: &str, id: impl ToString) -> Value {
    let output = run(lab, &["state", "--at", at, what, &id.to_string()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "state --at {at} {what}: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The position of the event of type `kind` in `outcome` (the `nth` of them).
fn position(outcome: &Outcome, kind: &str, nth: usize) -> String {
    let mut events = outcome.events.iter().filter(|e| e.event_type == kind);
    events.nth(nth).expect(kind).position.to_string()
}

#[tokio::test]
async fn a_run_is_seen_requested_queued_assigned_and_finished() {
    let history = History::build().await;
    let (lab, run2) = (&history.lab, history.run2);
    let venv0 = history.fixture.venv_ids[0].to_string();
    let requested = position(&history.run2_queued, "run_requested", 0);
    let at_request = state(lab, &requested, "run", run2).await;
    assert_eq!(at_request["as_of"]["position"].to_string(), requested);
    assert_eq!(at_request["run"]["phase"], "requested");
    assert_eq!(at_request["run"]["user"], "bob");

    let queued = state(
        lab,
        &position(&history.run2_queued, "run_queued", 0),
        "run",
        run2,
    )
    .await;
    assert_eq!(
        (&queued["run"]["status"], &queued["run"]["venv_id"]),
        (&"queued".into(), &Value::Null)
    );
    assert_eq!(queued["run"]["selector"]["venv_id"], venv0.as_str());
    let assigned = position(&history.run1_finished, "run_assigned", 0);
    let assigned = state(lab, &assigned, "run", run2).await;
    assert_eq!(assigned["run"]["status"], "assigned");
    assert_eq!(assigned["run"]["venv_id"], venv0.as_str());
    assert_eq!(assigned["run"]["attempt"], 1);
    let finished = state(
        lab,
        &position(&history.run2_finished, "run_finished", 0),
        "run",
        run2,
    )
    .await;
    assert_eq!(
        (&finished["run"]["phase"], &finished["run"]["status"]),
        (&"finished".into(), &"passed".into())
    );
    assert_eq!(finished["run"]["executor"], "e1", "the executor's name");

    let queued_event = history
        .all
        .iter()
        .find(|e| e.event_type == "run_queued")
        .unwrap();
    let time = queued_event.recorded_at;
    let by_time = state(
        lab,
        &time.to_rfc3339_opts(SecondsFormat::Micros, true),
        "run",
        run2,
    )
    .await;
    let last = history
        .all
        .iter()
        .filter(|e| e.recorded_at <= time)
        .map(|e| e.position)
        .max();
    assert_eq!(by_time["as_of"]["position"].as_i64(), last);
    assert_eq!(by_time["run"]["status"], "queued");

    let before: i64 = requested.parse::<i64>().unwrap() - 1;
    let missing = run(
        lab,
        &[
            "state",
            "--at",
            &before.to_string(),
            "run",
            &run2.to_string(),
        ],
    )
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(&format!("no run {run2} at position {before}")),
        "{stderr}"
    );
    history.cleanup().await;
}

#[tokio::test]
async fn a_pool_is_seen_before_and_after_a_lease() {
    let history = History::build().await;
    let lab = &history.lab;
    let machine = history.fixture.machine_id;
    let [venv0, venv1] = [0, 1].map(|i| history.fixture.venv_ids[i].to_string());
    let statuses = |pool: &Value| -> Vec<(String, String, Value)> {
        let venvs = pool["pool"]["venvs"].as_array().unwrap();
        venvs
            .iter()
            .map(|v| {
                (
                    v["venv_id"].as_str().unwrap().to_owned(),
                    v["status"].as_str().unwrap().to_owned(),
                    v["leased_by"].clone(),
                )
            })
            .collect()
    };
    let free = |id: &str| (id.to_owned(), "free".to_owned(), Value::Null);
    let leased = |id: &str, run: uuid::Uuid| {
        (
            id.to_owned(),
            "leased".to_owned(),
            Value::from(run.to_string()),
        )
    };

    let before = state(
        lab,
        &position(&history.run1_started, "run_requested", 0),
        "pool",
        machine,
    )
    .await;
    assert_eq!(statuses(&before), [free(&venv0), free(&venv1)]);
    assert_eq!(before["pool"]["machine"]["retired"], false);
    assert_eq!(
        before["pool"]["machine"]["labels"],
        serde_json::json!(["linux", "x86"])
    );
    let after = state(
        lab,
        &position(&history.run1_started, "venv_leased", 0),
        "pool",
        machine,
    )
    .await;
    assert_eq!(
        statuses(&after),
        [leased(&venv0, history.run1), free(&venv1)]
    );
    assert_eq!(after["pool"]["queued_runs"], serde_json::json!([]));

    let waiting = state(
        lab,
        &position(&history.run2_queued, "run_queued", 0),
        "pool",
        machine,
    )
    .await;
    let queued = waiting["pool"]["queued_runs"].as_array().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["run_id"], history.run2.to_string());
    let handed_over = position(&history.run1_finished, "venv_leased", 0);
    let venv = state(lab, &handed_over, "venv", &venv0).await;
    assert_eq!(
        (&venv["venv"]["status"], &venv["venv"]["leased_by"]),
        (&"leased".into(), &history.run2.to_string().into())
    );
    assert_eq!(venv["venv"]["name"], "venv0");
    let now = state(lab, "999999", "pool", machine).await;
    assert_eq!(
        now["as_of"]["position"].as_i64(),
        history.all.last().map(|e| e.position)
    );
    assert_eq!(statuses(&now), [free(&venv0), free(&venv1)]);
    history.cleanup().await;
}
