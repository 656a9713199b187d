//! Two runs compared test by test (runledger-insights' `compare`), each run by the results of
//! its last attempt in `rm_tests.reports`.

use crate::error::ReadModelError;
use crate::rows::outcome_named;
use runledger_insights::{Comparison, TestId, compare};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// How many duration changes a comparison lists.
pub const TOP_DURATION_CHANGES: usize = 20;

/// Run `a` against run `b`, with the names of the tests the comparison lists.
#[derive(Debug, Clone)]
pub struct RunComparison {
    /// The comparison.
    pub comparison: Comparison,
    /// `(classname, name)` of every test either run reported.
    pub names: HashMap<TestId, (String, String)>,
    /// The attempt of `a` compared.
    pub attempt_a: Option<i32>,
    /// The attempt of `b` compared.
    pub attempt_b: Option<i32>,
}

/// What is wrong with a comparison's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingRun {
    /// The first run is unknown.
    A,
    /// The second run is unknown.
    B,
}

/// Compares the last attempts of runs `a` and `b` (`b` the later one, usually); `Err` names a
/// run the read models do not know. A run that reported no per-test results compares as empty.
pub async fn compare_runs(
    pool: &PgPool,
    a: Uuid,
    b: Uuid,
) -> Result<Result<RunComparison, MissingRun>, ReadModelError> {
    for (run, missing) in [(a, MissingRun::A), (b, MissingRun::B)] {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rm_runs.runs WHERE run_id = $1)")
                .bind(run)
                .fetch_one(pool)
                .await?;
        if !known {
            return Ok(Err(missing));
        }
    }
    let mut names = HashMap::new();
    let (results_a, attempt_a) = last_attempt(pool, a, &mut names).await?;
    let (results_b, attempt_b) = last_attempt(pool, b, &mut names).await?;
    Ok(Ok(RunComparison {
        comparison: compare(&results_a, &results_b, TOP_DURATION_CHANGES),
        names,
        attempt_a,
        attempt_b,
    }))
}

#[derive(sqlx::FromRow)]
struct ResultLine {
    test_id: Uuid,
    attempt: i32,
    status: String,
    duration_ms: i64,
    classname: String,
    name: String,
}

/// The results of `run_id`'s last attempt that reported any, by test.
async fn last_attempt(
    pool: &PgPool,
    run_id: Uuid,
    names: &mut HashMap<TestId, (String, String)>,
) -> Result<
    (
        BTreeMap<TestId, runledger_insights::compare::Result>,
        Option<i32>,
    ),
    ReadModelError,
> {
    let lines: Vec<ResultLine> = sqlx::query_as(
        "SELECT t.test_id, r.attempt, u.status, u.duration_ms, t.classname, t.name \
         FROM rm_tests.reports r \
         CROSS JOIN LATERAL unnest(r.tests, r.statuses, r.durations) WITH ORDINALITY \
           AS u(number, status, duration_ms, k) \
         JOIN rm_tests.tests t ON t.number = u.number \
         WHERE r.run_id = $1 AND r.attempt = \
           (SELECT max(attempt) FROM rm_tests.reports WHERE run_id = $1) \
         ORDER BY r.position, u.k",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    let attempt = lines.first().map(|line| line.attempt);
    let mut results = BTreeMap::new();
    for line in lines {
        let outcome = outcome_named(&line.status).ok_or_else(|| ReadModelError::UnknownValue {
            column: "rm_tests.reports.statuses",
            value: line.status.clone(),
        })?;
        let test_id = TestId(line.test_id);
        names.insert(test_id, (line.classname, line.name));
        results.insert(
            test_id,
            runledger_insights::compare::Result {
                outcome,
                duration_ms: u64::try_from(line.duration_ms).unwrap_or(0),
            },
        );
    }
    Ok((results, attempt))
}
