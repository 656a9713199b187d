//! The real `runledger audit` binary: JSON lines, tables, bad flags, `--follow`, a closed pipe.

use super::History;
use super::common::ADMIN;
use runledger_test_support::TestLab;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn binary() -> &'static PathBuf {
    runledger_test_support::runledger_binary()
}

/// `runledger audit …` against the lab's database, quiet and with a known terminal width.
pub fn audit(lab: &TestLab, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", &lab.db.url)
        .env_remove("RUST_LOG")
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `runledger audit …` to the end.
pub async fn run(lab: &TestLab, args: &[&str]) -> Output {
    audit(lab, args).output().await.unwrap()
}

/// Stdout as JSON lines.
pub fn json_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn the_binary_prints_json_lines_tables_and_refuses_bad_flags() {
    let history = History::build().await;
    let lab = &history.lab;
    let everything = json_lines(&run(lab, &[]).await);
    let expected: Vec<Value> = history
        .all
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(
        everything, expected,
        "every event, with exactly the contract's fields"
    );
    assert_eq!(everything[0].as_object().unwrap().len(), 12);

    let executor =
        json_lines(&run(lab, &["--actor", "executor:e1", "--type", "run_finished"]).await);
    assert_eq!(executor.len(), 2);
    assert!(
        executor
            .iter()
            .all(|e| e["type"] == "run_finished" && e["actor"] == "executor:e1")
    );
    let window = json_lines(
        &run(
            lab,
            &[
                "--stream", "run", "--from", "3", "--to", "30", "--limit", "2",
            ],
        )
        .await,
    );
    assert_eq!(window.len(), 2);
    assert!(
        window
            .iter()
            .all(|e| e["stream_id"].as_str().unwrap().starts_with("run-"))
    );
    assert!(window[0]["position"].as_i64().unwrap() >= 3);

    let run1 = format!("run-{}", history.run1);
    let table = run(lab, &["--stream", &run1, "--format", "table"]).await;
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("POSITION") && lines[0].contains("STREAM_ID"),
        "{text}"
    );
    let run1_events = history.all.iter().filter(|e| e.stream_id == run1).count();
    assert_eq!(
        lines.len(),
        1 + run1_events,
        "a header and run 1's events:\n{text}"
    );
    let column = lines[0].find("TYPE").unwrap();
    assert!(lines[1][column..].starts_with("run_requested"), "{text}");
    assert!(
        lines[1].contains(&run1) && lines[1].contains(ADMIN),
        "{text}"
    );
    assert!(
        lines.iter().all(|line| line.chars().count() < 200),
        "{text}"
    );

    let bad = run(lab, &["--since", "yesterday"]).await;
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--since") && stderr.contains("RFC 3339"),
        "{stderr}"
    );
    history.cleanup().await;
}

/// The next line of a child's stdout, within 20 s.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a line within 20 s")
        .unwrap()
        .expect("stdout open");
    serde_json::from_str(&line).unwrap()
}

/// Sends SIGTERM and expects a clean exit.
async fn stop(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stops within 10 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn follow_prints_new_events_until_sigterm_and_a_closed_pipe_ends_it() {
    let history = History::build().await;
    let lab = &history.lab;
    let mut follow = audit(lab, &["--follow", "--type", "user_registered"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert_eq!(next_line(&mut lines).await["data"]["username"], ADMIN);
    assert_eq!(next_line(&mut lines).await["data"]["username"], "bob");
    let carol = json!({"username": "carol", "role": "member", "password": "carol-password"});
    super::common::accepted(&lab.client().send("register_user", ADMIN, carol).await);
    let new = next_line(&mut lines).await;
    assert_eq!(
        (new["type"].as_str(), new["data"]["username"].as_str()),
        (Some("user_registered"), Some("carol"))
    );
    stop(follow).await;

    let mut head = audit(lab, &["--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(head.stdout.take().unwrap()).lines();
    next_line(&mut lines).await;
    drop(lines); // like `| head -1`: the reader goes away
    let dave = json!({"username": "dave", "role": "member", "password": "dave-password"});
    super::common::accepted(&lab.client().send("register_user", ADMIN, dave).await);
    let status = tokio::time::timeout(Duration::from_secs(20), head.wait())
        .await
        .expect("ends once its output is gone")
        .unwrap();
    assert!(
        status.success(),
        "a closed pipe is a normal end: {status:?}"
    );

    // An `--until` long past: nothing committed from now on can match, so following ends.
    let past = audit(lab, &["--follow", "--until", "2020-01-01T00:00:00Z"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), past.wait_with_output())
        .await
        .expect("--follow with a past --until ends by itself")
        .unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{output:?}"
    );
    history.cleanup().await;
}

#[tokio::test]
async fn verify_exits_0_when_intact_and_1_naming_the_first_bad_position() {
    let history = History::build().await;
    let lab = &history.lab;
    lab.store.seal_pending(10_000).await.unwrap();
    let intact = run(lab, &["verify"]).await;
    let text = String::from_utf8_lossy(&intact.stdout);
    assert!(intact.status.success() && text.contains("intact"), "{text}");
    let report = &json_lines(&run(lab, &["verify", "--format", "json"]).await)[0];
    assert_eq!(
        (&report["intact"], &report["first_problem"]),
        (&true.into(), &Value::Null)
    );

    let mut tx = lab.db.pool.begin().await.unwrap();
    for sql in [
        "SET LOCAL session_replication_role = replica",
        "DELETE FROM events WHERE position = 3",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let tampered = run(lab, &["verify"]).await;
    assert_eq!(tampered.status.code(), Some(1));
    let text = String::from_utf8_lossy(&tampered.stdout);
    assert!(text.contains("position 3"), "{text}");
    let json = run(lab, &["verify", "--format", "json"]).await;
    assert_eq!(json.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["first_problem"]["position"], 3);
    assert_eq!(report["first_problem"]["problem"], "missing");
    history.cleanup().await;
}
