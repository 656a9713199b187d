//! The tests list: filters and keyset pages over `rm_tests.tests`, each sort a range over its
//! `(expression, test_id)` index.

use super::TestsQueryError;
use super::sort::{TestSort, TestSortKey};
use crate::error::ReadModelError;
use crate::keyset::{Cursor, CursorError, page_end};
use crate::rows::TestRow;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

/// The tests list's filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Of this test case.
    pub test_case_id: Option<Uuid>,
    /// Whose last result has this status (`passed`, `failed`, `error`, `skipped`).
    pub last_status: Option<String>,
    /// Flaky (`true`) or not (`false`).
    pub flaky: Option<bool>,
    /// Whose name or classname holds this text (case-insensitive).
    pub text: Option<String>,
    /// Quarantined (`true`) or not (`false`).
    pub quarantined: Option<bool>,
}

/// One test as the list shows it (and the API answers it): the figures without the recent
/// results and evidence.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
#[schema(as = TestView)]
pub struct TestListRow {
    /// `uuid_v5` of the test case, classname and name (docs/insights.md).
    pub test_id: Uuid,
    /// The test case whose runs report it.
    pub test_case_id: Uuid,
    /// Its class or module (may be empty).
    pub classname: String,
    /// Its name.
    pub name: String,
    /// Results recorded, attempts included.
    pub runs: i64,
    /// `passed / (passed + failed + errors)`; null while every result was skipped.
    pub pass_rate: Option<f64>,
    /// `(failed + errors) / runs`.
    pub fail_rate: f64,
    /// `passed`, `failed`, `error` or `skipped`.
    pub last_status: String,
    /// When it last ran.
    pub last_run_at: DateTime<Utc>,
    /// When its last status became what it is.
    pub last_changed_at: DateTime<Utc>,
    /// It flipped under the same inputs within the flaky window.
    pub flaky: bool,
    /// Flips over comparisons in the window, 0 to 1.
    pub flaky_score: f64,
    /// Median duration of the last 50 results that ran.
    pub duration_p50_ms: Option<i64>,
    /// 90th percentile of the same.
    pub duration_p90_ms: Option<i64>,
    /// Quarantined: its failures are shown but do not fail runs.
    pub quarantined: bool,
}

impl TestListRow {
    /// The list's view of `row`, quarantined or not.
    pub fn of(row: &TestRow, quarantined: bool) -> Self {
        Self {
            test_id: row.test_id,
            test_case_id: row.test_case_id,
            classname: row.classname.clone(),
            name: row.name.clone(),
            runs: row.runs,
            pass_rate: row.pass_rate,
            fail_rate: row.fail_rate,
            last_status: row.last_status.clone(),
            last_run_at: row.last_run_at,
            last_changed_at: row.last_changed_at,
            flaky: row.flaky,
            flaky_score: row.flaky_score,
            duration_p50_ms: row.duration_p50_ms,
            duration_p90_ms: row.duration_p90_ms,
            quarantined,
        }
    }
}

/// One page of tests and the cursor of the next (`None` on the last page).
#[derive(Debug)]
pub struct Page {
    /// The rows.
    pub rows: Vec<TestListRow>,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}

const COLUMNS: &str = "test_id, test_case_id, classname, name, runs, pass_rate, fail_rate, \
    last_status, last_run_at, last_changed_at, flaky, flaky_score, duration_p50_ms, duration_p90_ms, \
    EXISTS (SELECT 1 FROM rm_tests.quarantines q WHERE q.test_id = t.test_id) AS quarantined";

/// Reads one page of at most `limit` tests.
pub async fn page(
    pool: &PgPool,
    filters: &Filters,
    sort: TestSort,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Page, ReadModelError> {
    let cursor = cursor
        .map(|raw| Cursor::decode(raw, &sort.label()))
        .transpose()
        .map_err(TestsQueryError::from)?;
    let expression = sort.key.expression();
    let (after, direction) = if sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut sql: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM rm_tests.tests t WHERE true"));
    if let Some(test_case_id) = filters.test_case_id {
        sql.push(" AND test_case_id = ").push_bind(test_case_id);
    }
    if let Some(status) = &filters.last_status {
        sql.push(" AND last_status = ").push_bind(status.clone());
    }
    if let Some(flaky) = filters.flaky {
        sql.push(" AND flaky = ").push_bind(flaky);
    }
    if let Some(quarantined) = filters.quarantined {
        sql.push(if quarantined { " AND " } else { " AND NOT " })
            .push("EXISTS (SELECT 1 FROM rm_tests.quarantines q WHERE q.test_id = t.test_id)");
    }
    if let Some(text) = &filters.text {
        let pattern = format!("%{}%", escape_like(text));
        sql.push(" AND (name ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR classname ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(cursor) = &cursor {
        sql.push(format_args!(" AND ({expression}, test_id) {after} ("));
        push_value(&mut sql, sort.key, &cursor.value).map_err(TestsQueryError::from)?;
        sql.push(", ").push_bind(cursor.id).push(")");
    }
    sql.push(format_args!(
        " ORDER BY {expression} {direction}, test_id {direction} LIMIT "
    ));
    sql.push_bind(limit + 1);
    let mut rows: Vec<TestListRow> = sql.build_query_as().fetch_all(pool).await?;
    let next_cursor = page_end(&mut rows, limit, |last| Cursor {
        sort: sort.label(),
        value: sort_value(last, sort.key),
        id: last.test_id,
    });
    Ok(Page { rows, next_cursor })
}

/// `text` with LIKE's wildcards and escape taken literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn sort_value(row: &TestListRow, key: TestSortKey) -> Value {
    match key {
        TestSortKey::FailRate => serde_json::json!(row.fail_rate),
        TestSortKey::FlakyScore => serde_json::json!(row.flaky_score),
        TestSortKey::DurationP90 => serde_json::json!(row.duration_p90_ms.unwrap_or(-1)),
        TestSortKey::Name => serde_json::json!(row.name),
        TestSortKey::LastRunAt => serde_json::json!(row.last_run_at),
    }
}

/// Binds a cursor's sort value with the expression's type.
fn push_value(
    sql: &mut QueryBuilder<'_, Postgres>,
    key: TestSortKey,
    value: &Value,
) -> Result<(), CursorError> {
    match key {
        TestSortKey::FailRate | TestSortKey::FlakyScore => {
            sql.push_bind(value.as_f64().ok_or(CursorError::Malformed)?);
        }
        TestSortKey::DurationP90 => {
            sql.push_bind(value.as_i64().ok_or(CursorError::Malformed)?);
        }
        TestSortKey::Name => {
            sql.push_bind(value.as_str().ok_or(CursorError::Malformed)?.to_owned());
        }
        TestSortKey::LastRunAt => {
            let time: DateTime<Utc> =
                serde_json::from_value(value.clone()).map_err(|_| CursorError::Malformed)?;
            sql.push_bind(time);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn wildcards_in_the_text_filter_are_taken_literally() {
        assert_eq!(escape_like("test_a%b\\c"), "test\\_a\\%b\\\\c");
    }
}
