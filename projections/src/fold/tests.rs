//! Given events, expect rows: the folds without a database.

use super::Fact;
use super::lab;
use super::pool::PoolFold;
use super::runs::RunsFold;
use chrono::{DateTime, TimeZone, Utc};
use runledger_types::Event;
use serde_json::json;
use uuid::Uuid;

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, second)
        .single()
        .unwrap_or_default()
}

/// Facts from `(type, data)` pairs, one second apart, positions from 1.
fn facts(events: &[(&str, serde_json::Value)]) -> Vec<Fact> {
    events
        .iter()
        .enumerate()
        .map(|(i, (kind, data))| Fact {
            position: i as i64 + 1,
            recorded_at: at(i as u32),
            actor: "ada".into(),
            event: Event::from_parts(kind, data.clone()).unwrap(),
        })
        .collect()
}

fn ids() -> (Uuid, Uuid, Uuid, Uuid) {
    (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    )
}

fn lifecycle(run: Uuid, venv: Uuid, machine: Uuid, test_case: Uuid) -> Vec<Fact> {
    facts(&[
        (
            "machine_registered",
            json!({"machine_id": machine, "name": "lab-1", "host": "10.0.0.1", "port": 22, "os": "linux",
            "username": "t", "owner": "ada", "password": {"key_id": "k", "alg": "aes-256-gcm", "nonce": "bm9uY2U=", "ciphertext": "c2VjcmV0"}, "labels": ["x"]}),
        ),
        (
            "test_case_defined",
            json!({"test_case_id": test_case, "name": "smoke", "description": "", "command": "pytest",
            "files": [], "env": {}, "timeout_s": 60, "retries": 0}),
        ),
        (
            "venv_added",
            json!({"venv_id": venv, "machine_id": machine, "name": "v1", "path": "/v/v1", "python": "python3", "requirements": []}),
        ),
        (
            "venv_provisioned",
            json!({"venv_id": venv, "python_version": "3.11.7"}),
        ),
        (
            "run_requested",
            json!({"run_id": run, "test_case_id": test_case, "user": "mia"}),
        ),
        ("venv_leased", json!({"venv_id": venv, "run_id": run})),
        (
            "run_assigned",
            json!({"run_id": run, "venv_id": venv, "machine_id": machine, "attempt": 1}),
        ),
        ("run_started", json!({"run_id": run, "executor": "e1"})),
        (
            "run_output",
            json!({"run_id": run, "seq": 1, "stream": "stdout", "text": "héllo\n"}),
        ),
        (
            "run_output",
            json!({"run_id": run, "seq": 2, "stream": "stderr", "text": "warn\n"}),
        ),
        (
            "run_finished",
            json!({"run_id": run, "status": "failed", "exit_code": 1,
            "summary": {"passed": 3, "failed": 1, "skipped": 0, "errors": 0}}),
        ),
        ("venv_released", json!({"venv_id": venv, "run_id": run})),
    ])
}

#[test]
fn a_run_row_carries_names_times_output_offsets_and_its_result() {
    let (run, venv, machine, test_case) = ids();
    let mut fold = RunsFold::default();
    for fact in lifecycle(run, venv, machine, test_case) {
        fold.apply(&fact);
    }
    let row = fold.run(run).unwrap();
    assert_eq!(row.status.as_str(), "failed");
    assert_eq!(row.requested_by, "mia");
    assert_eq!(row.test_case_name.as_deref(), Some("smoke"));
    assert_eq!(row.machine_name.as_deref(), Some("lab-1"));
    assert_eq!(row.venv_name.as_deref(), Some("v1"));
    assert_eq!(
        (row.queued_at, row.started_at, row.finished_at),
        (at(4), Some(at(7)), Some(at(10)))
    );
    assert_eq!(row.duration_ms, Some(3_000));
    assert_eq!(row.exit_code, Some(1));
    assert_eq!(
        row.summary,
        Some(json!({"passed": 3, "failed": 1, "skipped": 0, "errors": 0}))
    );
    assert_eq!((row.attempt, row.last_position), (1, 11));
    let output = fold.pending_output();
    assert_eq!(output.len(), 2);
    // Offsets count bytes, so a reader can resume from any byte offset.
    assert_eq!((output[0].byte_offset, output[1].byte_offset), (0, 7));
    assert_eq!(row.output_bytes, 12);
    assert_eq!(output[1].stream, "stderr");
}

#[test]
fn venvs_move_through_their_statuses_and_the_queue_follows_runs() {
    let (run, venv, machine, test_case) = ids();
    let mut fold = PoolFold::default();
    let all = lifecycle(run, venv, machine, test_case);
    for fact in &all[..6] {
        fold.apply(fact);
    }
    let leased = fold.venv_row(venv).unwrap();
    assert_eq!(
        (leased.status.as_str(), leased.run_id, leased.leases),
        ("in_use", Some(run), 1)
    );
    assert_eq!(leased.python_version.as_deref(), Some("3.11.7"));
    assert!(fold.queue_row(run).is_some_and(|row| row.ticket.is_none()));
    for fact in &all[6..] {
        fold.apply(fact);
    }
    let released = fold.venv_row(venv).unwrap();
    assert_eq!((released.status.as_str(), released.run_id), ("free", None));
    assert!(
        fold.queue_row(run).is_none(),
        "a finished run leaves the queue"
    );

    let waiting = Uuid::now_v7();
    let queued = facts(&[
        (
            "run_requested",
            json!({"run_id": waiting, "test_case_id": test_case, "user": "mia", "labels": ["gpu"]}),
        ),
        (
            "run_queued",
            json!({"run_id": waiting, "reason": "no_matching_machine"}),
        ),
    ]);
    for fact in &queued {
        fold.apply(fact);
    }
    let row = fold.queue_row(waiting).unwrap();
    assert_eq!(
        row.ticket,
        Some(2),
        "the queue is ordered by the run_queued position"
    );
    assert_eq!(row.labels, ["gpu"]);
    assert_eq!(row.reason.as_deref(), Some("no_matching_machine"));
}

#[test]
fn machine_rows_say_whether_credentials_exist_never_what_they_are() {
    let (run, venv, machine, test_case) = ids();
    let mut fold = lab::machines();
    let mut all = lifecycle(run, venv, machine, test_case);
    all.extend(facts(&[
        (
            "machine_updated",
            json!({"machine_id": machine, "name": "lab-9", "labels": ["y"]}),
        ),
        ("machine_retired", json!({"machine_id": machine})),
    ]));
    for fact in &all {
        fold.apply(fact);
    }
    let row = fold.row(&machine).unwrap();
    assert_eq!(
        (row.name.as_str(), row.labels.as_slice()),
        ("lab-9", &["y".to_owned()][..])
    );
    assert!(row.has_password && !row.has_private_key && row.retired);
    assert_eq!(row.retired_at, Some(at(1)));
    let text = serde_json::to_string(row).unwrap();
    assert!(!text.contains("c2VjcmV0"), "{text}");
}

#[test]
fn users_keep_their_role_but_not_their_password_hash() {
    let mut fold = lab::users();
    let registered = facts(&[(
        "user_registered",
        json!({"username": "mia", "role": "member",
        "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}),
    )]);
    fold.apply(&registered[0]);
    let row = fold.row(&"mia".to_owned()).unwrap();
    assert_eq!(
        (row.role.as_str(), row.registered_by.as_str()),
        ("member", "ada")
    );
    assert!(!serde_json::to_string(row).unwrap().contains("argon2"));
}

#[test]
fn accounts_point_at_the_latest_hash_and_keep_whether_disabled_and_the_last_position() {
    let mut fold = super::accounts::accounts();
    let events = facts(&[
        (
            "user_registered",
            json!({"username": "mia", "role": "member", "password_hash": "$old"}),
        ),
        (
            "password_changed",
            json!({"username": "mia", "password_hash": "$new"}),
        ),
        ("tokens_revoked", json!({"username": "mia"})),
        ("user_disabled", json!({"username": "mia"})),
    ]);
    fold.apply(&events[0]);
    fold.apply(&events[1]);
    let row = fold.row(&"mia".to_owned()).unwrap();
    assert_eq!((row.password_position, row.position), (2, 2));
    assert!(!serde_json::to_string(row).unwrap().contains("$new"));
    assert_eq!(
        (row.disabled, row.password_changed_at),
        (false, Some(at(1)))
    );
    fold.apply(&events[2]);
    fold.apply(&events[3]);
    let row = fold.row(&"mia".to_owned()).unwrap();
    assert_eq!(
        (row.disabled, row.position, row.role.as_str()),
        (true, 4, "member")
    );
    assert_eq!(row.tokens_revoked_at, Some(at(2)));
}

#[test]
fn the_hand_written_output_encoder_matches_the_generic_one() {
    let (run, venv, machine, test_case) = ids();
    let mut fold = RunsFold::default();
    for fact in lifecycle(run, venv, machine, test_case) {
        fold.apply(&fact);
    }
    for chunk in fold.pending_output() {
        let (mut fast, mut generic) = (String::new(), String::new());
        super::runs::encode_output(chunk, &mut fast);
        crate::copy::encode_row(
            &runledger_readmodel::rows::RUNS_TABLES[1],
            chunk,
            &mut generic,
        )
        .unwrap();
        assert_eq!(fast, generic);
    }
}
