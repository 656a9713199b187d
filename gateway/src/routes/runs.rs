//! The run routes: history, one run, its log, its audit trail, starting and cancelling.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::openapi::{RunPage, RunView};
use crate::routes::bodies::{RawBody, StartRunRequest, new_id, object, typed_body};
use crate::routes::{live, parse_opt, parse_uuid, path_uuid, query, send};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runledger_readmodel::history::{self, Filters, Sort};
use runledger_readmodel::rows::RunRow;
use runledger_readmodel::runs::{self as run_reads, EventsQuery};
use runledger_readmodel::{OutputText, ReadModelError};
use runledger_types::command::{CancelRun, StartRun};
use runledger_types::{RunId, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most rows per page.
pub const MAX_LIMIT: i64 = 500;

/// Output chunks read per page while serving a log.
const LOG_PAGE: i64 = 256;

/// The contract's run answer, plus the attempt, the failure classification and cancellation.
pub fn run_view(row: &RunRow) -> RunView {
    RunView {
        run_id: row.run_id,
        status: row.status.as_str().to_owned(),
        user: row.requested_by.clone(),
        machine_id: row.machine_id,
        machine_name: row.machine_name.clone(),
        test_case_id: row.test_case_id,
        test_case_name: row.test_case_name.clone(),
        venv_id: row.venv_id,
        venv_name: row.venv_name.clone(),
        queued_at: row.queued_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        duration_ms: row.duration_ms,
        exit_code: row.exit_code,
        summary: row.summary.clone(),
        attempt: row.attempt,
        reason: row.reason.clone(),
        error_code: row.error_code.clone(),
        cancel_requested: row.cancel_requested,
        labels: row.labels.clone(),
        group_id: row.group_id,
        shard: row.shard,
        jenkins_build: match (row.jenkins_build_number, &row.jenkins_build_url) {
            (Some(number), Some(url)) => Some(crate::openapi::JenkinsBuildView {
                number,
                url: url.clone(),
            }),
            _ => None,
        },
    }
}

fn run_json(row: &RunRow) -> Value {
    serde_json::to_value(run_view(row)).unwrap_or(Value::Null)
}

/// `GET /api/v1/runs`: `{items, next_cursor}`.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs",
    params(("status" = Option<String>, Query, description = "Comma-separated statuses", pattern = "^ *(queued|assigned|running|passed|failed|error|timed_out|cancelled) *(, *(queued|assigned|running|passed|failed|error|timed_out|cancelled) *)*$"),
           ("user" = Option<String>, Query), ("machine_id" = Option<uuid::Uuid>, Query),
           ("test_case_id" = Option<uuid::Uuid>, Query),
           ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "RFC 3339"),
           ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "RFC 3339"),
           ("sort" = Option<String>, Query, description = "queued_at, started_at, finished_at, duration; leading - for descending", pattern = "^-?(queued_at|started_at|finished_at|duration|duration_ms)$"),
           ("limit" = Option<i64>, Query, description = "Runs per page (default 50)", minimum = 1, maximum = 500),
           ("cursor" = Option<String>, Query, description = "The previous page's next_cursor, as given (a made-up one is 400 bad_request)"),
           ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "A page of runs", body = crate::openapi::RunPage), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let known = [
        "status",
        "user",
        "machine_id",
        "test_case_id",
        "since",
        "until",
        "sort",
        "limit",
        "cursor",
        "min_position",
    ];
    if let Some(unknown) = params.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {unknown:?}; known: {}",
            known.join(", ")
        )));
    }
    let get = |name: &str| params.get(name).map(String::as_str);
    state
        .fresh(parse_opt(get("min_position"), "min_position")?)
        .await?;
    let statuses = match get("status") {
        Some(raw) => raw
            .split(',')
            .map(|status| check_status(status.trim_matches(' ')))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let filters = Filters {
        statuses,
        user: get("user").map(str::to_owned),
        machine_id: get("machine_id")
            .map(|raw| parse_uuid(raw, "machine_id"))
            .transpose()?,
        test_case_id: get("test_case_id")
            .map(|raw| parse_uuid(raw, "test_case_id"))
            .transpose()?,
        since: parse_opt(get("since"), "since")?,
        until: parse_opt(get("until"), "until")?,
    };
    let sort = Sort::parse(get("sort")).map_err(ReadModelError::from)?;
    let limit = crate::routes::page_limit(parse_opt(get("limit"), "limit")?)?;
    let page = history::page(&state.pool, &filters, sort, limit, get("cursor")).await?;
    let page = RunPage {
        items: page.rows.iter().map(run_view).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(Json(
        serde_json::to_value(page).map_err(ApiError::internal)?,
    ))
}

fn check_status(status: &str) -> Result<RunStatus, ApiError> {
    const STATUSES: [&str; 8] = [
        "queued",
        "assigned",
        "running",
        "passed",
        "failed",
        "error",
        "timed_out",
        "cancelled",
    ];
    runledger_readmodel::rows::run_status(status).map_err(|_| {
        ApiError::bad_request(format!(
            "status: unknown status {status:?}; use {}",
            STATUSES.join(", ")
        ))
    })
}

/// Query parameters of the single-run routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    /// Wait until the read models include this log position.
    pub min_position: Option<i64>,
}

async fn find(state: &AppState, run_id: Uuid) -> Result<RunRow, ApiError> {
    let found = run_reads::run(&state.pool, run_id).await?;
    found.ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))
}

fn run_id_of(
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Uuid, ApiError> {
    path_uuid(path, "run_id")
}

/// `GET /api/v1/runs/{run_id}`: the run, its per-test results, and why it waits when queued.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}", tag = "runs",
    params(("run_id" = uuid::Uuid, Path), ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "The run, with tests, queue_reason, executor, env", body = crate::openapi::RunView),
              (status = 404, description = "No such run", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    _caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<Freshness>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = run_id_of(path)?;
    state.fresh(query(params)?.min_position).await?;
    let detail = run_reads::run_detail(&state.pool, run_id).await?;
    let run_reads::RunDetail {
        run: row,
        tests,
        queue_reason,
    } = detail.ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))?;
    let tests = tests.map(Value::Array);
    let mut answer = run_json(&row);
    if let Some(object) = answer.as_object_mut() {
        object.insert("tests".into(), tests.unwrap_or_else(|| json!([])));
        object.insert("queue_reason".into(), json!(queue_reason));
        object.insert("executor".into(), json!(row.executor));
        object.insert("env".into(), row.env.clone());
        object.insert("output_bytes".into(), json!(row.output_bytes));
    }
    Ok(Json(answer))
}

/// Query parameters of the log route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Byte offset to start from.
    from: Option<i64>,
    min_position: Option<i64>,
}

/// `GET /api/v1/runs/{run_id}/log`: the output so far as `text/plain`, from byte `from`; with
/// `Accept: text/event-stream`, followed live ([`live::run_log`]).
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/log", tag = "runs",
    params(("run_id" = uuid::Uuid, Path), ("from" = Option<i64>, Query, description = "Byte offset", minimum = 0),
           ("min_position" = Option<i64>, Query),
           ("Last-Event-ID" = Option<String>, Header, description = "With Accept: text/event-stream: resume after this chunk (its number); ignored otherwise")),
    responses((status = 200, description = "The output (text/plain), or Server-Sent Events with Accept: text/event-stream", content_type = "text/plain", body = String), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let run_id = run_id_of(path)?;
    if live::wants_event_stream(&headers) {
        let after = live::last_event_id(&headers)?;
        return Ok(live::run_log(state, run_id, after).await?.into_response());
    }
    let params = query(params)?;
    state.fresh(params.min_position).await?;
    let from = params.from.unwrap_or(0);
    if from < 0 {
        return Err(ApiError::bad_request("from: must be a byte offset ≥ 0"));
    }
    find(&state, run_id).await?;
    // The first page is read before answering, so a failing read is still a 5xx; the rest is
    // streamed page by page (an error then cuts the response short).
    let mut output = OutputText::new(state.pool.clone(), run_id, from, LOG_PAGE);
    let first = output.next_page().await?;
    let rest = futures::stream::try_unfold(output, |mut output| async move {
        Ok::<_, ReadModelError>(output.next_page().await?.map(|text| (text, output)))
    });
    let first = first.map(Ok::<_, ReadModelError>);
    let body = futures::StreamExt::chain(futures::stream::iter(first), rest);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
        .into_response())
}

/// Query parameters of the audit-trail route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Include `run_output` events (default: no; the log route serves the output).
    output: Option<bool>,
    min_position: Option<i64>,
    /// Only events after this stream version (the previous page's `next_cursor`).
    cursor: Option<i64>,
    /// Most events in the page, 1 to [`MAX_EVENTS_PAGE`] (default).
    limit: Option<i64>,
}

/// Most events one page of a run's audit trail holds: a run with a million output chunks is
/// read page by page, never whole into the gateway's memory.
pub const MAX_EVENTS_PAGE: i64 = 1000;

/// `GET /api/v1/runs/{run_id}/events`: the run's events in order: who asked what, when.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/events", tag = "runs",
    params(("run_id" = uuid::Uuid, Path), ("output" = Option<bool>, Query),
           ("cursor" = Option<i64>, Query, description = "The previous page's next_cursor"),
           ("limit" = Option<i64>, Query, description = "Events per page (default 1000)", minimum = 1, maximum = 1000),
           ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "A page of the run's audit trail: {run_id, events, next_cursor}; next_cursor is null on the last page"), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    _caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = run_id_of(path)?;
    let params = query(params)?;
    let limit = params.limit.unwrap_or(MAX_EVENTS_PAGE);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_EVENTS_PAGE}"
        )));
    }
    state.fresh(params.min_position).await?;
    let query = EventsQuery {
        run_id,
        output: params.output.unwrap_or(false),
        after_version: params.cursor.unwrap_or(0),
        limit,
    };
    let rows = run_reads::run_events(&state.pool, &query).await?;
    if rows.is_empty() && params.cursor.is_none() {
        return Err(ApiError::not_found(format!("no run {run_id}")));
    }
    let next_cursor = match rows.last() {
        Some(last) if rows.len() as i64 == limit => Some(last.stream_version),
        _ => None,
    };
    let events: Vec<Value> = rows.into_iter().map(|event| event.document).collect();
    Ok(Json(
        json!({"run_id": run_id, "events": events, "next_cursor": next_cursor}),
    ))
}

/// `POST /api/v1/runs`: publishes `start_run` as the caller; 202 `{run_id, command_id,
/// position}` once accepted.
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs",
    request_body(content = StartRunRequest),
    responses((status = 202, description = "Accepted: run_id, command_id, position", body = crate::openapi::AcceptedBody),
              (status = 404, description = "Unknown test case, machine or venv", body = crate::openapi::ErrorBody),
              (status = 409, description = "The run exists, or a rerun names a run that has not finished, of another test case, or with no failing test (`nothing_to_rerun`)", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload: an env the test case does not let runs set, a test no run reported (`unknown_test`), or a selection whose names would take more than the 100 KiB of `RUNLEDGER_TESTS` (`selection_too_large`)", body = crate::openapi::ErrorBody),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    body: RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let payload = object(body)?;
    let run_id = new_id(&payload, "run_id")?;
    let command: StartRun = typed_body(payload, run_id)?;
    let accepted = send(&state, &caller, &command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": run_id, "command_id": accepted.command_id,
                    "position": accepted.position})),
    ))
}

/// `POST /api/v1/runs/{run_id}/cancel` body (optional): `cancel_run`'s payload but the run,
/// which the path names.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why, for the audit history.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The optional body of a cancellation: none (or JSON `null`) is no reason; anything else must
/// be a JSON [`CancelBody`] (415 without a JSON content type, 422 `invalid_payload` otherwise).
pub fn cancel_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<CancelBody>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|err| {
        ApiError::rejected(runledger_types::Rejection::new(
            runledger_types::RejectionCode::InvalidPayload,
            format!("payload: {err}"),
        ))
    })
}

/// `POST /api/v1/runs/{run_id}/cancel`: publishes `cancel_run` as the caller (members may cancel
/// only their own runs); 202 `{run_id, command_id, position}`.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/cancel", tag = "runs",
    params(("run_id" = uuid::Uuid, Path)),
    request_body(content = Option<CancelBody>),
    responses((status = 202, description = "Accepted", body = crate::openapi::AcceptedBody),
              (status = 403, description = "A member cancelling another's run", body = crate::openapi::ErrorBody),
              (status = 409, description = "Already finished", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run_id = run_id_of(path)?;
    let command = CancelRun {
        run_id: RunId::from(run_id),
        reason: cancel_body(&headers, &body)?.and_then(|body| body.reason),
    };
    let accepted = send(&state, &caller, &command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": run_id, "command_id": accepted.command_id,
                    "position": accepted.position})),
    ))
}
