//! `runledger run compare A B`: what changed from run A to run B, test by test.

use anyhow::Context;
use clap::Args;
use runledger_insights::TestId;
use runledger_readmodel::test_insights::{MissingRun, compare_runs};
use std::collections::HashMap;
use uuid::Uuid;

/// `runledger run compare`
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run.
    pub run_id: Uuid,
    /// The later run.
    pub other_run_id: Uuid,
}

/// Prints the comparison of two runs' last attempts.
pub async fn compare(pool: &runledger_readmodel::PgPool, args: CompareArgs) -> anyhow::Result<()> {
    let (a, b) = (args.run_id, args.other_run_id);
    let compared = compare_runs(pool, a, b)
        .await?
        .map_err(|missing| {
            let run = if missing == MissingRun::A { a } else { b };
            anyhow::anyhow!("no run {run}")
        })
        .context("comparing runs")?;
    let names = &compared.names;
    let comparison = &compared.comparison;
    println!(
        "run {a} (attempt {}) -> run {b} (attempt {})",
        attempt(compared.attempt_a),
        attempt(compared.attempt_b)
    );
    for (title, tests) in [
        ("newly failing", &comparison.newly_failing),
        ("fixed", &comparison.fixed),
        ("still failing", &comparison.still_failing),
        ("added", &comparison.added),
        ("removed", &comparison.removed),
    ] {
        println!("{title} ({}):", tests.len());
        for test in tests {
            println!("  {}  {}", test.0, full_name(*test, names));
        }
    }
    println!("duration changes ({}):", comparison.duration_changes.len());
    for change in &comparison.duration_changes {
        let relative = change
            .relative
            .map(|r| format!(" ({:+.0}%)", r * 100.0))
            .unwrap_or_default();
        println!(
            "  {:>+9} ms{relative}  {} -> {} ms  {}",
            change.change_ms,
            change.before_ms,
            change.after_ms,
            full_name(change.test_id, names)
        );
    }
    Ok(())
}

fn attempt(attempt: Option<i32>) -> String {
    attempt.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn full_name(test: TestId, names: &HashMap<TestId, (String, String)>) -> String {
    match names.get(&test) {
        Some((classname, name)) => super::full_name(classname, name),
        None => test.0.to_string(),
    }
}
