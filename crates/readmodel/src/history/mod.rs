//! The run history: filters, sorts and keyset cursors over `rm_runs.runs` and its
//! `(sort column, run_id)` indexes. One implementation serves the gateway's `GET /api/v1/runs`
//! and the CLI's `runledger run list`.

mod sort;

pub use sort::{Sort, SortKey};

use crate::error::ReadModelError;
use crate::keyset::{Cursor, CursorError, page_end};
use crate::rows::RunRow;
use chrono::{DateTime, Utc};
use runledger_types::RunStatus;
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

/// A history request the caller got wrong; the messages are the API's.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// `sort` names no key.
    #[error(
        "sort: unknown key {0:?}; use queued_at, started_at, finished_at or duration, with a leading - for descending"
    )]
    UnknownSort(String),
    /// `cursor` is not right.
    #[error(transparent)]
    Cursor(#[from] CursorError),
}

/// The history filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Any of these statuses.
    pub statuses: Vec<RunStatus>,
    /// Requested by this user.
    pub user: Option<String>,
    /// On this machine.
    pub machine_id: Option<Uuid>,
    /// Of this test case.
    pub test_case_id: Option<Uuid>,
    /// The sort's time column at or after this.
    pub since: Option<DateTime<Utc>>,
    /// The sort's time column before this.
    pub until: Option<DateTime<Utc>>,
}

/// One page of runs and the cursor of the next (`None` on the last page).
#[derive(Debug)]
pub struct Page {
    /// The rows.
    pub rows: Vec<RunRow>,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}

/// Which rows a query phase reads.
enum Phase<'a> {
    /// Rows whose sort value is set, after the cursor if any.
    Valued(Option<&'a Cursor>),
    /// Rows whose sort value is null (they come last), after `run_id` if any.
    Nulls(Option<Uuid>),
}

/// Reads one page of at most `limit` runs. Rows whose sort value is null come last; they are
/// read by a second query once the valued rows are exhausted, so each query is a plain range
/// over a `(column, run_id)` index, with no `OR` that would keep Postgres from using it.
pub async fn page(
    pool: &PgPool,
    filters: &Filters,
    sort: Sort,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Page, ReadModelError> {
    let cursor = cursor
        .map(|raw| Cursor::decode(raw, &sort.label()))
        .transpose()
        .map_err(HistoryError::from)?;
    let time_filtered = sort.key.time_column() == sort.key.column()
        && (filters.since.is_some() || filters.until.is_some());
    let nullable = sort.key != SortKey::QueuedAt && !time_filtered;
    let mut rows = Vec::new();
    let first = match &cursor {
        Some(cursor) if cursor.value.is_null() => Phase::Nulls(Some(cursor.id)),
        cursor => Phase::Valued(cursor.as_ref()),
    };
    let nulls_next = matches!(first, Phase::Valued(_)) && nullable;
    rows.extend(read(pool, filters, sort, &first, limit + 1).await?);
    if nulls_next && (rows.len() as i64) <= limit {
        let wanted = limit + 1 - rows.len() as i64;
        rows.extend(read(pool, filters, sort, &Phase::Nulls(None), wanted).await?);
    }
    let next_cursor = page_end(&mut rows, limit, |last| Cursor {
        sort: sort.label(),
        value: sort_value(last, sort.key),
        id: last.run_id,
    });
    Ok(Page { rows, next_cursor })
}

/// One phase's rows, at most `limit`.
async fn read(
    pool: &PgPool,
    filters: &Filters,
    sort: Sort,
    phase: &Phase<'_>,
    limit: i64,
) -> Result<Vec<RunRow>, ReadModelError> {
    let column = sort.key.column();
    let after = if sort.descending { "<" } else { ">" };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    let mut sql: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM rm_runs.runs WHERE true");
    push_filters(&mut sql, filters, sort);
    match phase {
        Phase::Valued(cursor) => {
            sql.push(format_args!(" AND {column} IS NOT NULL"));
            if let Some(cursor) = cursor {
                sql.push(format_args!(" AND ({column}, run_id) {after} ("));
                push_value(&mut sql, sort.key, &cursor.value)?;
                sql.push(", ").push_bind(cursor.id).push(")");
            }
            sql.push(format_args!(
                " ORDER BY {column} {direction}, run_id {direction} LIMIT "
            ));
        }
        Phase::Nulls(after_id) => {
            sql.push(format_args!(" AND {column} IS NULL"));
            if let Some(run_id) = after_id {
                sql.push(format_args!(" AND run_id {after} "))
                    .push_bind(*run_id);
            }
            sql.push(format_args!(" ORDER BY run_id {direction} LIMIT "));
        }
    }
    sql.push_bind(limit);
    Ok(sql.build_query_as::<RunRow>().fetch_all(pool).await?)
}

fn push_filters(sql: &mut QueryBuilder<'_, Postgres>, filters: &Filters, sort: Sort) {
    match filters.statuses.as_slice() {
        [] => {}
        // One status as an equality: the planner then walks the (status, <time>, run_id) index
        // in order and reads just one page, where `= ANY` made it skip through the time index.
        [status] => {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        statuses => {
            let words: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
            sql.push(" AND status = ANY(").push_bind(words).push(")");
        }
    }
    if let Some(user) = &filters.user {
        sql.push(" AND requested_by = ").push_bind(user.clone());
    }
    if let Some(machine_id) = filters.machine_id {
        sql.push(" AND machine_id = ").push_bind(machine_id);
    }
    if let Some(test_case_id) = filters.test_case_id {
        sql.push(" AND test_case_id = ").push_bind(test_case_id);
    }
    let time = sort.key.time_column();
    if let Some(since) = filters.since {
        sql.push(format_args!(" AND {time} >= ")).push_bind(since);
    }
    if let Some(until) = filters.until {
        sql.push(format_args!(" AND {time} < ")).push_bind(until);
    }
}

fn sort_value(row: &RunRow, key: SortKey) -> Value {
    match key {
        SortKey::QueuedAt => serde_json::json!(row.queued_at),
        SortKey::StartedAt => serde_json::json!(row.started_at),
        SortKey::FinishedAt => serde_json::json!(row.finished_at),
        SortKey::Duration => serde_json::json!(row.duration_ms),
    }
}

/// Binds a cursor's sort value with the column's type.
fn push_value(
    sql: &mut QueryBuilder<'_, Postgres>,
    key: SortKey,
    value: &Value,
) -> Result<(), HistoryError> {
    match key {
        SortKey::Duration => {
            sql.push_bind(value.as_i64().ok_or(CursorError::Malformed)?);
        }
        _ => {
            let time: DateTime<Utc> =
                serde_json::from_value(value.clone()).map_err(|_| CursorError::Malformed)?;
            sql.push_bind(time);
        }
    }
    Ok(())
}
