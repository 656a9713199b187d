//! `GET /api/v1/runs`: the filters, sorts and keyset cursors of the run history, as SQL over
//! `rm_runs.runs` and its `(sort column, run_id)` indexes.

use crate::error::ApiError;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use runledger_readmodel::rows::RunRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most rows per page.
pub const MAX_LIMIT: i64 = 500;

/// What the history can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// When the run was requested.
    QueuedAt,
    /// When it started (runs that never started come last).
    StartedAt,
    /// When it finished (unfinished runs come last).
    FinishedAt,
    /// How long it ran (runs that never ran come last).
    Duration,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            Self::QueuedAt => "queued_at",
            Self::StartedAt => "started_at",
            Self::FinishedAt => "finished_at",
            Self::Duration => "duration_ms",
        }
    }

    /// The time column `since` and `until` apply to: the sort's, when it is a time.
    fn time_column(self) -> &'static str {
        match self {
            Self::StartedAt => "started_at",
            Self::FinishedAt => "finished_at",
            Self::QueuedAt | Self::Duration => "queued_at",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::QueuedAt => "queued_at",
            Self::StartedAt => "started_at",
            Self::FinishedAt => "finished_at",
            Self::Duration => "duration",
        }
    }
}

/// A sort: key and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub key: SortKey,
    /// Newest / longest first.
    pub descending: bool,
}

impl Sort {
    /// Parses `queued_at`, `-started_at`, `duration`, ... (default `-queued_at`).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let raw = raw.unwrap_or("-queued_at");
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let key = match name {
            "queued_at" => SortKey::QueuedAt,
            "started_at" => SortKey::StartedAt,
            "finished_at" => SortKey::FinishedAt,
            "duration" | "duration_ms" => SortKey::Duration,
            other => {
                return Err(ApiError::bad_request(format!(
                    "sort: unknown key {other:?}; use queued_at, started_at, finished_at or \
                     duration, with a leading - for descending"
                )));
            }
        };
        Ok(Self { key, descending })
    }

    fn label(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.key.name()
        )
    }
}

/// Where a page ends: the last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort it belongs to.
    sort: String,
    /// The last row's sort value (a time, a number, or null).
    value: Value,
    /// The last row's id.
    run_id: Uuid,
}

impl Cursor {
    fn encode(&self) -> Result<String, ApiError> {
        let json = serde_json::to_vec(self).map_err(ApiError::internal)?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(raw: &str, sort: Sort) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request("cursor: not a cursor this API gave out");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.sort != sort.label() {
            return Err(ApiError::bad_request(format!(
                "cursor: it belongs to sort={}, not sort={}",
                cursor.sort,
                sort.label()
            )));
        }
        Ok(cursor)
    }
}

/// The history filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Any of these statuses.
    pub statuses: Vec<String>,
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

/// Reads one page. Rows whose sort value is null come last; they are read by a second query
/// once the valued rows are exhausted, so each query is a plain range over a `(column, run_id)`
/// index, with no `OR` that would keep Postgres from using it.
pub async fn page(
    pool: &PgPool,
    filters: &Filters,
    sort: Sort,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Page, ApiError> {
    let cursor = cursor.map(|raw| Cursor::decode(raw, sort)).transpose()?;
    let time_filtered = sort.key.time_column() == sort.key.column()
        && (filters.since.is_some() || filters.until.is_some());
    let nullable = sort.key != SortKey::QueuedAt && !time_filtered;
    let mut rows = Vec::new();
    let first = match &cursor {
        Some(cursor) if cursor.value.is_null() => Phase::Nulls(Some(cursor.run_id)),
        cursor => Phase::Valued(cursor.as_ref()),
    };
    let nulls_next = matches!(first, Phase::Valued(_)) && nullable;
    rows.extend(read(pool, filters, sort, &first, limit + 1).await?);
    if nulls_next && (rows.len() as i64) <= limit {
        let wanted = limit + 1 - rows.len() as i64;
        rows.extend(read(pool, filters, sort, &Phase::Nulls(None), wanted).await?);
    }
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        match rows.last() {
            Some(last) => Some(
                Cursor {
                    sort: sort.label(),
                    value: sort_value(last, sort.key),
                    run_id: last.run_id,
                }
                .encode()?,
            ),
            None => None,
        }
    } else {
        None
    };
    Ok(Page { rows, next_cursor })
}

/// One phase's rows, at most `limit`.
async fn read(
    pool: &PgPool,
    filters: &Filters,
    sort: Sort,
    phase: &Phase<'_>,
    limit: i64,
) -> Result<Vec<RunRow>, ApiError> {
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
                sql.push(", ").push_bind(cursor.run_id).push(")");
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
            sql.push(" AND status = ").push_bind(status.clone());
        }
        statuses => {
            sql.push(" AND status = ANY(")
                .push_bind(statuses.to_vec())
                .push(")");
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
) -> Result<(), ApiError> {
    let bad = || ApiError::bad_request("cursor: malformed value");
    match key {
        SortKey::Duration => {
            sql.push_bind(value.as_i64().ok_or_else(bad)?);
        }
        _ => {
            let time: DateTime<Utc> = serde_json::from_value(value.clone()).map_err(|_| bad())?;
            sql.push_bind(time);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_parse_with_direction_and_refuse_unknown_keys() {
        let sort = Sort::parse(Some("-started_at")).unwrap_or_else(|_| unreachable!());
        assert_eq!((sort.key, sort.descending), (SortKey::StartedAt, true));
        let sort = Sort::parse(None).unwrap_or_else(|_| unreachable!());
        assert_eq!((sort.key, sort.descending), (SortKey::QueuedAt, true));
        assert!(Sort::parse(Some("color")).is_err());
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_sort() {
        let sort = Sort::parse(Some("duration")).unwrap_or_else(|_| unreachable!());
        let cursor = Cursor {
            sort: sort.label(),
            value: serde_json::json!(42),
            run_id: Uuid::nil(),
        };
        let encoded = cursor.encode().unwrap_or_default();
        assert_eq!(Cursor::decode(&encoded, sort).ok(), Some(cursor));
        let other = Sort::parse(Some("-duration")).unwrap_or_else(|_| unreachable!());
        assert!(Cursor::decode(&encoded, other).is_err());
        assert!(Cursor::decode("not-a-cursor", sort).is_err());
    }
}
