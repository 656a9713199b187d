//! A machine's pool: its own venvs, and the queued runs whose selector it satisfies.

use super::*;

#[test]
fn a_pool_shows_its_own_venvs_and_the_queued_runs_it_could_serve() {
    let mut events = vec![
        machine(LINUX, "linux"),
        machine(WINDOWS, "windows"),
        test_case(),
    ];
    events.extend(venv(1, LINUX, true));
    events.extend(venv(0, LINUX, false));
    events.extend(venv(2, WINDOWS, true));
    for (n, user, label, venv) in [
        (1, "ada", Some("linux"), None),
        (2, "bob", Some("windows"), None),
        (3, "bob", None, Some(venv_id(2))),
        (4, "ada", None, None),
    ] {
        events.push(requested(n, user, label, venv));
        events.push(queued(n));
    }
    let lab = lab_of(&events);
    let linux = serde_json::to_value(PoolView::new(&lab, LINUX).expect("known")).expect("json");
    assert_eq!(
        linux["machine"],
        json!({"machine_id": LINUX, "owner": "ada", "os": "linux", "labels": ["linux"],
               "host_key": null, "retired": false})
    );
    let venvs: Vec<&Value> = linux["venvs"]
        .as_array()
        .expect("venvs")
        .iter()
        .map(|v| &v["venv_id"])
        .collect();
    assert_eq!(venvs, [&json!(venv_id(0)), &json!(venv_id(1))], "by id");
    let queued_ids = |pool: &Value| -> Vec<Value> {
        pool["queued_runs"]
            .as_array()
            .expect("queued")
            .iter()
            .map(|r| r["run_id"].clone())
            .collect()
    };
    assert_eq!(
        queued_ids(&linux),
        [json!(run_id(1)), json!(run_id(4))],
        "oldest first"
    );
    assert_eq!(
        linux["queued_runs"][0]["selector"]["labels"],
        json!(["linux"])
    );
    let windows = serde_json::to_value(PoolView::new(&lab, WINDOWS).expect("known")).expect("json");
    assert_eq!(
        queued_ids(&windows),
        [json!(run_id(2)), json!(run_id(3)), json!(run_id(4))]
    );

    events.push(Event::MachineRetired(MachineRetired {
        machine_id: WINDOWS,
    }));
    let lab = lab_of(&events);
    let retired = serde_json::to_value(PoolView::new(&lab, WINDOWS).expect("known")).expect("json");
    assert_eq!(retired["machine"]["retired"], true);
    assert!(
        queued_ids(&retired).is_empty(),
        "a retired machine serves no run"
    );
    assert!(PoolView::new(&lab, MachineId(Uuid::from_u128(9))).is_none());
}
