//! The run group routes: start and cancel a group, list groups, one group with its members and
//! plan, and its merged JUnit report (docs/groups.md).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::bodies::{RawBody, StartGroupRequest, new_id, object, typed_body};
use crate::routes::runs::{CancelBody, Freshness, cancel_body};
use crate::routes::{page_limit, parse_opt, parse_uuid, path_uuid, query, send};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runledger_readmodel::groups::{self as group_reads, GroupFilters};
use runledger_readmodel::rows::{GroupRow, RunRow};
use runledger_types::command::{CancelGroup, StartGroup};
use runledger_types::{GroupId, GroupStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// A group as the listing shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    /// The group.
    pub group_id: Uuid,
    /// `running`, `passed`, `failed`, `error` or `cancelled`.
    pub status: String,
    /// `shards` or `matrix`.
    pub kind: String,
    /// Who asked for it.
    pub user: String,
    /// Its test case.
    pub test_case_id: Uuid,
    /// How many member runs it has.
    pub members: i32,
    /// When it started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When its last member ended.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its wall time.
    pub duration_ms: Option<i64>,
    /// Shards: the ideal makespan of the known durations, `max(total / shards, longest)`.
    pub ideal_ms: Option<i64>,
    /// Shards: the longest member's predicted time.
    pub predicted_ms: Option<i64>,
    /// The members' summaries added up, once it finished.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Cancellation was asked for.
    pub cancel_requested: bool,
}

/// A page of groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupPage {
    /// The groups, newest first.
    pub items: Vec<GroupView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One member of a group: its plan and its run's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMemberView {
    /// Its index among the members.
    pub shard: u32,
    /// Its run.
    pub run_id: Uuid,
    /// Its run's status (`queued` until the runs read model has it).
    pub status: String,
    /// Shards: how many tests it runs.
    pub tests: usize,
    /// Shards: the tests it runs, as the split placed them (longest first).
    #[schema(value_type = Vec<Object>)]
    pub selected_tests: Vec<Value>,
    /// Shards: the time its tests were expected to take.
    pub predicted_ms: Option<u64>,
    /// Matrix: its combination (`labels`, `python`, `env`).
    #[schema(value_type = Option<Object>)]
    pub combination: Option<Value>,
    /// When it was requested, assigned a venv, started and ended.
    pub queued_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it got a venv.
    pub assigned_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When its process started.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it ended.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// From start to end.
    pub duration_ms: Option<i64>,
    /// The machine and venv it ran in.
    pub machine_name: Option<String>,
    /// The venv it leased.
    pub venv_name: Option<String>,
    /// Its attempt (retries count up).
    pub attempt: i32,
    /// `{passed, failed, skipped, errors}`.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Why it ended, in words.
    pub reason: Option<String>,
}

/// One group: the listing's fields, its test case's name, selectors and members.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetailView {
    /// The listing's fields.
    #[serde(flatten)]
    pub group: GroupView,
    /// Its test case's name.
    pub test_case_name: Option<String>,
    /// The machine every member was restricted to.
    pub machine_id: Option<Uuid>,
    /// Labels every member asked for.
    pub labels: Vec<String>,
    /// Environment overrides of every member.
    #[schema(value_type = Object)]
    pub env: Value,
    /// Shards: tests the split had no duration for (each expected to take the median).
    pub unknown_tests: i32,
    /// Why it was cancelled, if it was.
    pub cancel_reason: Option<String>,
    /// Members by shard, with how many have ended.
    pub member_runs: Vec<GroupMemberView>,
    /// How many members have ended.
    pub ended: usize,
}

/// What an accepted `start_group` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupAccepted {
    /// The group.
    pub group_id: Uuid,
    /// The command's id.
    pub command_id: Uuid,
    /// The log position of its last event: pass as `min_position` to later reads.
    pub position: i64,
}

fn group_view(row: &GroupRow) -> GroupView {
    GroupView {
        group_id: row.group_id,
        status: row.status.as_str().to_owned(),
        kind: row.kind.clone(),
        user: row.requested_by.clone(),
        test_case_id: row.test_case_id,
        members: row.members,
        started_at: row.started_at,
        finished_at: row.finished_at,
        duration_ms: row.duration_ms,
        ideal_ms: row.ideal_ms,
        predicted_ms: row.predicted_ms,
        summary: row.summary.clone(),
        cancel_requested: row.cancel_requested,
    }
}

/// The members as the plan lists them, each with its run's row when the runs read model has it.
fn member_views(row: &GroupRow, runs: &[RunRow]) -> Vec<GroupMemberView> {
    let plan = row.plan.as_array().map(Vec::as_slice).unwrap_or_default();
    plan.iter()
        .filter_map(|planned| {
            let run_id: Uuid = planned["run_id"].as_str()?.parse().ok()?;
            let run = runs.iter().find(|run| run.run_id == run_id);
            Some(GroupMemberView {
                shard: u32::try_from(planned["shard"].as_u64()?).ok()?,
                run_id,
                status: run.map_or("queued", |run| run.status.as_str()).to_owned(),
                tests: planned["tests"].as_array().map_or(0, Vec::len),
                selected_tests: planned["tests"].as_array().cloned().unwrap_or_default(),
                predicted_ms: planned["predicted_ms"].as_u64(),
                combination: Some(planned["combination"].clone()).filter(|c| !c.is_null()),
                queued_at: run.map(|run| run.queued_at),
                assigned_at: run.and_then(|run| run.assigned_at),
                started_at: run.and_then(|run| run.started_at),
                finished_at: run.and_then(|run| run.finished_at),
                duration_ms: run.and_then(|run| run.duration_ms),
                machine_name: run.and_then(|run| run.machine_name.clone()),
                venv_name: run.and_then(|run| run.venv_name.clone()),
                attempt: run.map_or(0, |run| run.attempt),
                summary: run.and_then(|run| run.summary.clone()),
                reason: run.and_then(|run| run.reason.clone()),
            })
        })
        .collect()
}

/// `POST /api/v1/groups`: publishes `start_group` as the caller; 202 `{group_id, command_id,
/// position}` once accepted.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups",
    request_body(content = StartGroupRequest),
    responses((status = 202, description = "Accepted", body = GroupAccepted),
              (status = 404, description = "Unknown test case or machine", body = crate::openapi::ErrorBody),
              (status = 409, description = "The group exists (`group_exists`), the test case has no whole-suite run yet (`no_test_history`), or runs as a Jenkins job (`not_a_group_test_case`)", body = crate::openapi::ErrorBody),
              (status = 422, description = "Neither or both of `shards` and `matrix`, shards out of 1–64, more than 64 combinations, an env the test case does not let runs set, shards of a command other than pytest whose tests would not fit `RUNLEDGER_TESTS` (`selection_too_large`), or a plan too large for one message of the event stream (`event_too_large`)", body = crate::openapi::ErrorBody),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    body: RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let payload = object(body)?;
    let group_id = new_id(&payload, "group_id")?;
    let command: StartGroup = typed_body(payload, group_id)?;
    let accepted = send(&state, &caller, &command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"group_id": group_id, "command_id": accepted.command_id,
                    "position": accepted.position}),
        ),
    ))
}

/// `GET /api/v1/groups`: `{items, next_cursor}`, newest first.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    params(("status" = Option<String>, Query, description = "Comma-separated statuses", pattern = "^ *(running|passed|failed|error|cancelled) *(, *(running|passed|failed|error|cancelled) *)*$"),
           ("user" = Option<String>, Query), ("test_case_id" = Option<uuid::Uuid>, Query),
           ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Started at or after (RFC 3339)"),
           ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Started before (RFC 3339)"),
           ("limit" = Option<i64>, Query, description = "Groups per page (default 50)", minimum = 1, maximum = 500),
           ("cursor" = Option<String>, Query, description = "The previous page's next_cursor, as given (a made-up one is 400 bad_request)"),
           ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "A page of groups", body = GroupPage), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<GroupPage>, ApiError> {
    let params = query(params)?;
    state.fresh(params.min_position).await?;
    let statuses = match &params.status {
        Some(raw) => raw
            .split(',')
            .map(|status| check_status(status.trim_matches(' ')))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let filters = GroupFilters {
        statuses,
        user: params.user,
        test_case_id: params
            .test_case_id
            .as_deref()
            .map(|raw| parse_uuid(raw, "test_case_id"))
            .transpose()?,
        since: parse_opt(params.since.as_deref(), "since")?,
        until: parse_opt(params.until.as_deref(), "until")?,
    };
    let limit = page_limit(params.limit)?;
    let page = group_reads::page(&state.pool, &filters, limit, params.cursor.as_deref()).await?;
    Ok(Json(GroupPage {
        items: page.rows.iter().map(group_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Query parameters of `GET /api/v1/groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    user: Option<String>,
    test_case_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    min_position: Option<i64>,
}

fn check_status(status: &str) -> Result<GroupStatus, ApiError> {
    runledger_readmodel::rows::group_status(status).map_err(|_| {
        ApiError::bad_request(format!(
            "status: unknown status {status:?}; use running, passed, failed, error, cancelled"
        ))
    })
}

/// `GET /api/v1/groups/{group_id}`: the group, its plan and its members' progress.
#[utoipa::path(get, path = "/api/v1/groups/{group_id}", tag = "groups",
    params(("group_id" = uuid::Uuid, Path), ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "The group", body = GroupDetailView),
              (status = 404, description = "No such group", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    _caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<Freshness>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<GroupDetailView>, ApiError> {
    let group_id = path_uuid(path, "group_id")?;
    state.fresh(query(params)?.min_position).await?;
    let detail = group_reads::detail(&state.pool, group_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group {group_id}")))?;
    let member_runs = member_views(&detail.group, &detail.members);
    let ended = member_runs
        .iter()
        .filter(|m| m.finished_at.is_some())
        .count();
    Ok(Json(GroupDetailView {
        group: group_view(&detail.group),
        test_case_name: detail.test_case_name,
        machine_id: detail.group.machine_id,
        labels: detail.group.labels.clone(),
        env: detail.group.env.clone(),
        unknown_tests: detail.group.unknown_tests,
        cancel_reason: detail.group.cancel_reason.clone(),
        member_runs,
        ended,
    }))
}

/// `GET /api/v1/groups/{group_id}/junit`: the merged JUnit report, one `<testsuite>` per member
/// in a `<testsuites>`, as CI servers take one run's.
#[utoipa::path(get, path = "/api/v1/groups/{group_id}/junit", tag = "groups",
    params(("group_id" = uuid::Uuid, Path), ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "JUnit XML", content_type = "application/xml", body = String),
              (status = 404, description = "No such group", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn junit(
    State(state): State<AppState>,
    _caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<Freshness>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let group_id = path_uuid(path, "group_id")?;
    state.fresh(query(params)?.min_position).await?;
    let report = group_reads::junit_report(&state.pool, group_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group {group_id}")))?;
    Ok((
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        report,
    )
        .into_response())
}

/// `POST /api/v1/groups/{group_id}/cancel`: publishes `cancel_group` as the caller (members may
/// cancel only their own groups); 202 `{group_id, command_id, position}`.
#[utoipa::path(post, path = "/api/v1/groups/{group_id}/cancel", tag = "groups",
    params(("group_id" = uuid::Uuid, Path)),
    request_body(content = Option<CancelBody>),
    responses((status = 202, description = "Accepted", body = GroupAccepted),
              (status = 403, description = "A member cancelling another's group", body = crate::openapi::ErrorBody),
              (status = 404, description = "No such group", body = crate::openapi::ErrorBody),
              (status = 409, description = "Already finished or already cancelled", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let group_id = path_uuid(path, "group_id")?;
    let command = CancelGroup {
        group_id: GroupId::from(group_id),
        reason: cancel_body(&headers, &body)?.and_then(|body| body.reason),
    };
    let accepted = send(&state, &caller, &command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"group_id": group_id, "command_id": accepted.command_id,
                    "position": accepted.position}),
        ),
    ))
}
