//! Run groups as the gateway and the CLI show them: a page of groups (filters, newest first,
//! keyset cursors over `rm_groups.groups`), one group with its members (rows of `rm_runs`), and
//! its merged JUnit report.

use crate::error::ReadModelError;
use crate::junit;
use crate::keyset::{Cursor, CursorError, page_end};
use crate::rows::{GroupRow, RunRow};
use crate::runs::run_tests;
use chrono::{DateTime, Utc};
use runledger_types::GroupStatus;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

/// The label cursors of the group listing carry.
const SORT: &str = "-started_at";

/// The group listing's filters.
#[derive(Debug, Clone, Default)]
pub struct GroupFilters {
    /// Any of these statuses.
    pub statuses: Vec<GroupStatus>,
    /// Requested by this actor.
    pub user: Option<String>,
    /// Of this test case.
    pub test_case_id: Option<Uuid>,
    /// Started at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Started before this.
    pub until: Option<DateTime<Utc>>,
}

/// One page of groups, newest first, and the cursor of the next (`None` on the last page).
#[derive(Debug)]
pub struct GroupPage {
    /// The rows.
    pub rows: Vec<GroupRow>,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}

/// Reads one page of at most `limit` groups, newest first.
pub async fn page(
    pool: &PgPool,
    filters: &GroupFilters,
    limit: i64,
    cursor: Option<&str>,
) -> Result<GroupPage, ReadModelError> {
    let cursor = cursor
        .map(|raw| Cursor::decode(raw, SORT))
        .transpose()
        .map_err(GroupsQueryError::from)?;
    let mut sql: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM rm_groups.groups WHERE true");
    match filters.statuses.as_slice() {
        [] => {}
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
    if let Some(test_case_id) = filters.test_case_id {
        sql.push(" AND test_case_id = ").push_bind(test_case_id);
    }
    if let Some(since) = filters.since {
        sql.push(" AND started_at >= ").push_bind(since);
    }
    if let Some(until) = filters.until {
        sql.push(" AND started_at < ").push_bind(until);
    }
    if let Some(cursor) = &cursor {
        let time: DateTime<Utc> = serde_json::from_value(cursor.value.clone())
            .map_err(|_| GroupsQueryError::Cursor(CursorError::Malformed))?;
        sql.push(" AND (started_at, group_id) < (")
            .push_bind(time)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    sql.push(" ORDER BY started_at DESC, group_id DESC LIMIT ")
        .push_bind(limit + 1);
    let mut rows: Vec<GroupRow> = sql.build_query_as().fetch_all(pool).await?;
    let next_cursor = page_end(&mut rows, limit, |last| Cursor {
        sort: SORT.to_owned(),
        value: serde_json::json!(last.started_at),
        id: last.group_id,
    });
    Ok(GroupPage { rows, next_cursor })
}

/// A group listing request the caller got wrong; the messages are the API's.
#[derive(Debug, thiserror::Error)]
pub enum GroupsQueryError {
    /// `cursor` is not right.
    #[error(transparent)]
    Cursor(#[from] CursorError),
}

/// The group `group_id`, if the read model has it.
pub async fn group(pool: &PgPool, group_id: Uuid) -> Result<Option<GroupRow>, ReadModelError> {
    Ok(
        sqlx::query_as("SELECT * FROM rm_groups.groups WHERE group_id = $1")
            .bind(group_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// A group with its member runs, by shard.
#[derive(Debug, Clone)]
pub struct GroupDetail {
    /// The group's row.
    pub group: GroupRow,
    /// Its test case's current name.
    pub test_case_name: Option<String>,
    /// Its member runs as `rm_runs` shows them, by shard (a member the runs read model has not
    /// reached yet is missing).
    pub members: Vec<RunRow>,
}

/// The group `group_id` with its members, if the read model has it.
pub async fn detail(pool: &PgPool, group_id: Uuid) -> Result<Option<GroupDetail>, ReadModelError> {
    let Some(group) = group(pool, group_id).await? else {
        return Ok(None);
    };
    let members = members(pool, group_id).await?;
    let test_case_name =
        sqlx::query_scalar("SELECT name FROM rm_test_cases.test_cases WHERE test_case_id = $1")
            .bind(group.test_case_id)
            .fetch_optional(pool)
            .await?;
    Ok(Some(GroupDetail {
        group,
        test_case_name,
        members,
    }))
}

/// The member runs of `group_id`, by shard.
pub async fn members(pool: &PgPool, group_id: Uuid) -> Result<Vec<RunRow>, ReadModelError> {
    Ok(
        sqlx::query_as("SELECT * FROM rm_runs.runs WHERE group_id = $1 ORDER BY shard")
            .bind(group_id)
            .fetch_all(pool)
            .await?,
    )
}

/// The group's merged JUnit report: one suite per member, named by shard (and combination), with
/// its last attempt's results from the log; `None` for a group the read model does not have.
pub async fn junit_report(pool: &PgPool, group_id: Uuid) -> Result<Option<String>, ReadModelError> {
    let Some(detail) = detail(pool, group_id).await? else {
        return Ok(None);
    };
    let mut parts = Vec::with_capacity(detail.members.len());
    for member in &detail.members {
        let tests = run_tests(pool, member.run_id).await?.unwrap_or_default();
        parts.push((suite_name(&detail.group, member), member, tests));
    }
    let suites: Vec<junit::Suite<'_>> = parts
        .iter()
        .map(|(name, member, tests)| junit::Suite {
            name,
            status: member.finished_at.map(|_| member.status.as_str()),
            reason: member.reason.as_deref(),
            tests,
        })
        .collect();
    let name = format!("runledger group {group_id}");
    Ok(Some(junit::group_report(&name, &suites)))
}

/// `shard N`, or for a matrix member `shard N (its combination)`.
fn suite_name(group: &GroupRow, member: &RunRow) -> String {
    let shard = member.shard.unwrap_or_default();
    let combination = group
        .plan
        .as_array()
        .and_then(|plan| plan.iter().find(|m| m["shard"] == shard))
        .map(|m| &m["combination"])
        .filter(|c| !c.is_null());
    match combination {
        Some(combination) => format!("shard {shard} {combination}"),
        None => format!("shard {shard}"),
    }
}
