//! Insight across runs: the tests list (filters, sorts, keyset pages over `rm_tests.tests`), one
//! test with its history and flake evidence, and a test case's trend over time (from
//! `rm_runs.runs`). One implementation serves the gateway's `/api/v1/tests` routes and the CLI's
//! `runledger tests`.

mod compare;
mod list;
mod sort;
mod trend;

pub use compare::{MissingRun, RunComparison, TOP_DURATION_CHANGES, compare_runs};
pub use list::{Filters, Page, TestListRow, page};
pub use sort::{TestSort, TestSortKey};
pub use trend::{Bucket, TrendPoint, trend};

use crate::error::ReadModelError;
use crate::keyset::{Cursor, CursorError, page_end};
use crate::rows::{FLAKY_WINDOW, QuarantineRow, RECENT, RecentResult, TESTS_TABLES, TestRow};
use chrono::{DateTime, Utc};
use runledger_insights::{Observed, assess};
use runledger_types::RunId;
use sqlx::PgPool;
use std::sync::LazyLock;
use uuid::Uuid;

/// A tests request the caller got wrong; the messages are the API's.
#[derive(Debug, thiserror::Error)]
pub enum TestsQueryError {
    /// `sort` names no key.
    #[error(
        "sort: unknown key {0:?}; use fail_rate, flaky_score, duration_p90, name or last_run_at, with a leading - for descending"
    )]
    UnknownSort(String),
    /// `window` is out of range.
    #[error("window: {0} is out of range 1..={RECENT}")]
    Window(usize),
    /// `bucket` names no bucket.
    #[error("bucket: unknown bucket {0:?}; use hour, day or week")]
    UnknownBucket(String),
    /// `cursor` is not right.
    #[error(transparent)]
    Cursor(#[from] CursorError),
}

/// One result in a test's history, newest first.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The run.
    pub run_id: Uuid,
    /// Its attempt.
    pub attempt: i32,
    /// `passed`, `failed`, `error` or `skipped`.
    pub status: String,
    /// Milliseconds.
    pub duration_ms: i64,
    /// The failure or error message.
    pub message: Option<String>,
    /// The machine it ran on.
    pub machine_id: Option<Uuid>,
    /// That machine's current name.
    pub machine_name: Option<String>,
    /// When the result was recorded.
    pub finished_at: DateTime<Utc>,
    /// Where in the log (with `ordinal`, the history's keyset).
    #[serde(skip)]
    #[schema(ignore)]
    pub position: i64,
    #[serde(skip)]
    #[schema(ignore)]
    ordinal: i32,
}

/// A test's flakiness over a window of its recent results, and the runs where it flipped.
#[derive(Debug, Clone, PartialEq)]
pub struct FlakeEvidence {
    /// The window, in results.
    pub window: usize,
    /// Flipped under the same inputs within the window.
    pub flaky: bool,
    /// Flips over comparisons, 0 to 1.
    pub score: f64,
    /// The flips.
    pub flips: Vec<runledger_insights::Flip>,
}

/// One test: its row, a page of its history, and its flakiness over the window asked for.
#[derive(Debug, Clone)]
pub struct TestDetail {
    /// The figures.
    pub test: TestRow,
    /// Results, newest first.
    pub history: Vec<HistoryEntry>,
    /// Where the next page of history starts.
    pub next_cursor: Option<String>,
    /// Flakiness over the window asked for.
    pub flakiness: FlakeEvidence,
    /// Its quarantine, while one is in force.
    pub quarantine: Option<QuarantineRow>,
}

/// A test's row with its quarantine, if one is in force.
#[derive(sqlx::FromRow)]
struct WithQuarantine {
    #[sqlx(flatten)]
    test: TestRow,
    quarantine: Option<sqlx::types::Json<QuarantineRow>>,
}

/// A test's row and its quarantine; `$2`: whether to read its recent results (else `[]`).
/// Public so that benchmarks run the very SQL the API runs.
pub static TEST_SQL: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = TESTS_TABLES[0]
        .columns
        .iter()
        .map(|(name, _)| match *name {
            "recent" => "CASE WHEN $2 THEN t.recent ELSE '[]'::json END AS recent".to_owned(),
            name => format!("t.{name}"),
        })
        .collect();
    format!(
        "SELECT {}, to_jsonb(q) AS quarantine FROM rm_tests.tests t \
         LEFT JOIN rm_tests.quarantines q ON q.test_id = t.test_id WHERE t.test_id = $1",
        columns.join(", ")
    )
});

/// A page of a test's history before the keyset `($2, $3)`, newest first: its chunks newest
/// first (they never overlap), each unnested in its own order (newest first), so the scan stops
/// after `$4` results; then each result placed by its report.
pub const HISTORY_SQL: &str = "SELECT r.run_id, r.attempt, h.status, h.duration_ms, h.message, \
     r.machine_id, m.name AS machine_name, r.finished_at, h.position, h.ordinal \
     FROM (SELECT u.position, u.ordinal, u.status, u.duration_ms, u.message \
           FROM rm_tests.history c \
           CROSS JOIN LATERAL unnest(c.positions, c.ordinals, c.statuses, c.durations, c.messages) \
             WITH ORDINALITY AS u(position, ordinal, status, duration_ms, message, k) \
           WHERE c.test_id = $1 AND (c.from_position, c.from_ordinal) < ($2, $3) \
             AND (u.position, u.ordinal) < ($2, $3) \
           ORDER BY c.from_position DESC, c.from_ordinal DESC, u.k LIMIT $4) h \
     JOIN rm_tests.reports r ON r.position = h.position \
     LEFT JOIN rm_tests.machines m ON m.machine_id = r.machine_id \
     ORDER BY h.position DESC, h.ordinal DESC";

/// The label history cursors carry.
const HISTORY_SORT: &str = "history";

/// The test `test_id` with `limit` results of its history (after `cursor`) and its flakiness
/// over the last `window` results (1..=[`RECENT`]); `None` when no result names it.
pub async fn detail(
    pool: &PgPool,
    test_id: Uuid,
    window: usize,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Option<TestDetail>, ReadModelError> {
    if !(1..=RECENT).contains(&window) {
        return Err(TestsQueryError::Window(window).into());
    }
    let after = match cursor {
        Some(raw) => Some(history_cursor(raw).map_err(TestsQueryError::from)?),
        None => None,
    };
    // The test and its quarantine in one round trip; its recent results only when the window
    // is not the default, whose evidence the row holds.
    let found: Option<WithQuarantine> = sqlx::query_as(&TEST_SQL)
        .bind(test_id)
        .bind(window != FLAKY_WINDOW)
        .fetch_optional(pool)
        .await?;
    let Some(WithQuarantine { test, quarantine }) = found else {
        return Ok(None);
    };
    let quarantine = quarantine.map(|quarantine| quarantine.0);
    let (before_position, before_ordinal) = after.unwrap_or((i64::MAX, i32::MAX));
    let mut history: Vec<HistoryEntry> = sqlx::query_as(HISTORY_SQL)
        .bind(test_id)
        .bind(before_position)
        .bind(before_ordinal)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    let next_cursor = page_end(&mut history, limit, |last| Cursor {
        sort: HISTORY_SORT.to_owned(),
        value: serde_json::json!([last.position, last.ordinal]),
        id: test_id,
    });
    let flakiness = if window == FLAKY_WINDOW {
        FlakeEvidence {
            window,
            flaky: test.flaky,
            score: test.flaky_score,
            flips: test.flips.clone(),
        }
    } else {
        evidence(&test.recent, window)
    };
    Ok(Some(TestDetail {
        test,
        history,
        next_cursor,
        flakiness,
        quarantine,
    }))
}

/// The flakiness of `recent` (oldest first) over its last `window` results.
pub fn evidence(recent: &[RecentResult], window: usize) -> FlakeEvidence {
    let observed: Vec<Observed> = recent
        .iter()
        .map(|result| Observed {
            run_id: RunId(result.run_id),
            attempt: result.attempt,
            rerun_of: result.rerun_of.map(RunId),
            outcome: result.status,
            inputs: result.inputs.simple().to_string(),
        })
        .collect();
    let verdict = assess(&observed, window);
    FlakeEvidence {
        window,
        flaky: verdict.flaky,
        score: verdict.score,
        flips: verdict.flips,
    }
}

fn history_cursor(raw: &str) -> Result<(i64, i32), CursorError> {
    let cursor = Cursor::decode(raw, HISTORY_SORT)?;
    let (Some(position), Some(ordinal)) = (
        cursor.value.get(0).and_then(serde_json::Value::as_i64),
        cursor
            .value
            .get(1)
            .and_then(serde_json::Value::as_i64)
            .and_then(|ordinal| i32::try_from(ordinal).ok()),
    ) else {
        return Err(CursorError::Malformed);
    };
    Ok((position, ordinal))
}
