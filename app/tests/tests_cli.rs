//! The real binary: `runledger tests list|show|trend` over a lab whose runs reported per-test
//! results, read from the read models a projector keeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{
    TestLab, eventually, lab_for_reported_runs, reported_run, wobbly_suite,
};
use std::time::Duration;

const ADMIN: &str = "ada";
const EXEC: &str = "executor:e1";

async fn runledger(lab: &TestLab, args: &[&str]) -> String {
    let output = lab
        .runledger(env!("CARGO_BIN_EXE_runledger"))
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_tests_are_listed_shown_with_their_evidence_and_trended() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    let client = lab.client();
    client.register_admin(ADMIN).await;
    let test_case_id = lab_for_reported_runs(&client, ADMIN, EXEC).await;
    let mut runs = Vec::new();
    for n in 1..=4 {
        let (status, tests) = wobbly_suite(n);
        runs.push(reported_run(&client, (ADMIN, EXEC), test_case_id, status, tests).await);
    }
    let head = lab.store.head().await.unwrap();
    eventually(Duration::from_secs(30), "the read models", || async {
        let at = runledger_readmodel::projected_position(&lab.db.pool)
            .await
            .ok()?;
        (at >= head).then_some(())
    })
    .await;

    let flaky = runledger(&lab, &["tests", "list", "--flaky"]).await;
    let lines: Vec<&str> = flaky.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the one flaky test:\n{flaky}");
    assert!(lines[1].contains("tests.test_app::test_wobbly"), "{flaky}");
    assert!(lines[1].contains("50.0%"), "fails half the time:\n{flaky}");
    let test_id = lines[1].split_whitespace().next().unwrap().to_owned();

    let slowest = runledger(
        &lab,
        &[
            "tests",
            "list",
            "--test-case",
            &test_case_id.to_string(),
            "--sort",
            "-duration_p90",
            "--limit",
            "1",
        ],
    )
    .await;
    assert!(
        slowest.lines().nth(1).unwrap().contains("test_slow"),
        "{slowest}"
    );

    let shown = runledger(&lab, &["tests", "show", &test_id, "--history", "2"]).await;
    assert!(
        shown.contains("flaky         yes (score 1.00 over the last 30 results)"),
        "{shown}"
    );
    assert!(shown.contains("passed -> failed"), "{shown}");
    assert!(shown.contains("last failure"), "{shown}");
    let history: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.contains("history"))
        .skip(1)
        .collect();
    assert_eq!(history.len(), 2, "{shown}");

    let trend = runledger(
        &lab,
        &[
            "tests",
            "trend",
            &test_case_id.to_string(),
            "--bucket",
            "week",
        ],
    )
    .await;
    let row = trend.lines().nth(1).unwrap();
    assert!(
        row.contains("    4       2       2      0   50.0%"),
        "{trend}"
    );

    let (first, second) = (runs[0].to_string(), runs[1].to_string());
    let compared = runledger(&lab, &["run", "compare", &first, &second]).await;
    let newly = compared
        .lines()
        .skip_while(|line| !line.starts_with("newly failing (1):"))
        .nth(1)
        .unwrap_or_default();
    assert!(newly.ends_with("tests.test_app::test_wobbly"), "{compared}");
    assert!(
        compared.contains("+10 ms (+100%)  10 -> 20 ms  tests.test_app::test_steady"),
        "{compared}"
    );

    // Quarantined over the CLI: listed as such, shown with who and why; released again.
    runledger(
        &lab,
        &[
            "tests",
            "quarantine",
            &test_id,
            "--reason",
            "flaky, LAB-12",
            "--actor",
            ADMIN,
        ],
    )
    .await;
    let head = lab.store.head().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "the quarantine in the read model",
        || async {
            let at = runledger_readmodel::projected_position(&lab.db.pool)
                .await
                .ok()?;
            (at >= head).then_some(())
        },
    )
    .await;
    let quarantined = runledger(&lab, &["tests", "list", "--quarantined"]).await;
    assert!(
        quarantined.contains("test_wobbly  [quarantined]"),
        "{quarantined}"
    );
    let shown = runledger(&lab, &["tests", "show", &test_id]).await;
    assert!(
        shown.contains(&format!("by {ADMIN}: flaky, LAB-12")),
        "{shown}"
    );
    runledger(&lab, &["tests", "release", &test_id, "--actor", ADMIN]).await;
    let again = lab
        .runledger(env!("CARGO_BIN_EXE_runledger"))
        .args(["tests", "release", &test_id, "--actor", ADMIN])
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not_quarantined"));

    let missing = lab
        .runledger(env!("CARGO_BIN_EXE_runledger"))
        .args(["tests", "show", &uuid::Uuid::nil().to_string()])
        .output()
        .await
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no test"));

    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
