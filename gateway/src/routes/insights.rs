//! The insight routes: the tests list, one test with its history and flake evidence, and a
//! test case's trend. Answers come from the `tests` and `runs` read models
//! (runledger-readmodel's `test_insights`); docs/insights.md says what each figure means.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::openapi::insights::{
    FlakinessView, FlipView, QuarantineView, TestDetailView, TestPage, TrendView,
};
use crate::routes::bodies::{RawBody, object, typed_body};
use crate::routes::{path_uuid, query, send};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use runledger_readmodel::ReadModelError;
use runledger_readmodel::rows::FLAKY_WINDOW;
use runledger_readmodel::test_insights::{
    self as insights, Bucket, Filters, TestListRow, TestSort,
};
use runledger_types::command::{QuarantineTest, ReleaseTest};
use runledger_types::{Rejection, RejectionCode, TestId};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

type PathResult = Result<Path<String>, axum::extract::rejection::PathRejection>;
type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// Query parameters of `GET /api/v1/tests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    test_case_id: Option<Uuid>,
    status: Option<String>,
    flaky: Option<bool>,
    q: Option<String>,
    quarantined: Option<bool>,
    sort: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    min_position: Option<i64>,
}

/// The statuses a test's result can have.
const TEST_STATUSES: [&str; 4] = ["passed", "failed", "error", "skipped"];
/// Longest `q`.
const MAX_TEXT: usize = 200;

/// `GET /api/v1/tests`: `{items, next_cursor}`.
#[utoipa::path(get, path = "/api/v1/tests", tag = "tests",
    params(("test_case_id" = Option<uuid::Uuid>, Query),
           ("status" = Option<String>, Query, description = "The last result's status", pattern = "^(passed|failed|error|skipped)$"),
           ("flaky" = Option<bool>, Query, description = "Only flaky tests (true) or only steady ones (false)"),
           ("q" = Option<String>, Query, description = "Text in the name or classname (case-insensitive; no NUL)", max_length = 200, pattern = "^[^\\x00]*$"),
           ("quarantined" = Option<bool>, Query, description = "Only quarantined tests (true) or only the others (false)"),
           ("sort" = Option<String>, Query, description = "fail_rate, flaky_score, duration_p90, name, last_run_at; leading - for descending (default -fail_rate)", pattern = "^-?(fail_rate|flaky_score|duration_p90|duration_p90_ms|name|last_run_at)$"),
           ("limit" = Option<i64>, Query, description = "Tests per page (default 50)", minimum = 1, maximum = 500),
           ("cursor" = Option<String>, Query, description = "The previous page's next_cursor, as given (a made-up one is 400 bad_request)"),
           ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "A page of tests", body = TestPage),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    params: QueryResult<ListParams>,
) -> Result<Json<TestPage>, ApiError> {
    let params = query(params)?;
    state.fresh(params.min_position).await?;
    if let Some(status) = params
        .status
        .as_deref()
        .filter(|status| !TEST_STATUSES.contains(status))
    {
        return Err(ApiError::bad_request(format!(
            "status: unknown status {status:?}; use {}",
            TEST_STATUSES.join(", ")
        )));
    }
    if params
        .q
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_TEXT)
    {
        return Err(ApiError::bad_request(format!(
            "q: longer than {MAX_TEXT} characters"
        )));
    }
    // Postgres text cannot hold NUL, and no name or classname has one.
    if params.q.as_ref().is_some_and(|q| q.contains('\0')) {
        return Err(ApiError::bad_request("q: must not contain NUL"));
    }
    let filters = Filters {
        test_case_id: params.test_case_id,
        last_status: params.status,
        flaky: params.flaky,
        text: params.q.filter(|q| !q.is_empty()),
        quarantined: params.quarantined,
    };
    let sort = TestSort::parse(params.sort.as_deref()).map_err(ReadModelError::from)?;
    let limit = crate::routes::page_limit(params.limit)?;
    let page = insights::page(&state.pool, &filters, sort, limit, params.cursor.as_deref()).await?;
    Ok(Json(TestPage {
        items: page.rows,
        next_cursor: page.next_cursor,
    }))
}

/// Query parameters of `GET /api/v1/tests/{test_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailParams {
    window: Option<usize>,
    limit: Option<i64>,
    cursor: Option<String>,
    min_position: Option<i64>,
}

/// `GET /api/v1/tests/{test_id}`: the test's figures, a page of its history (newest first) and
/// its flakiness with the evidence.
#[utoipa::path(get, path = "/api/v1/tests/{test_id}", tag = "tests",
    params(("test_id" = uuid::Uuid, Path, description = "uuid_v5 of test case, classname and name (docs/insights.md)"),
           ("window" = Option<usize>, Query, description = "Flaky window in results (default 30)", minimum = 1, maximum = 50),
           ("limit" = Option<i64>, Query, description = "History entries per page (default 50)", minimum = 1, maximum = 500),
           ("cursor" = Option<String>, Query, description = "The previous page's next_cursor, as given"),
           ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "The test", body = TestDetailView),
              (status = 404, description = "No result names this test", body = crate::openapi::ErrorBody),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    _caller: Caller,
    path: PathResult,
    params: QueryResult<DetailParams>,
) -> Result<Json<TestDetailView>, ApiError> {
    let test_id = path_uuid(path, "test_id")?;
    let params = query(params)?;
    state.fresh(params.min_position).await?;
    let window = params.window.unwrap_or(FLAKY_WINDOW);
    let limit = crate::routes::page_limit(params.limit)?;
    let found = insights::detail(
        &state.pool,
        test_id,
        window,
        limit,
        params.cursor.as_deref(),
    )
    .await?;
    let detail = found.ok_or_else(|| ApiError::not_found(format!("no test {test_id}")))?;
    let flakiness = FlakinessView {
        window: detail.flakiness.window,
        flaky: detail.flakiness.flaky,
        score: detail.flakiness.score,
        flips: detail
            .flakiness
            .flips
            .iter()
            .map(|flip| FlipView {
                from_run: flip.from_run.0,
                from_attempt: flip.from_attempt,
                to_run: flip.to_run.0,
                to_attempt: flip.to_attempt,
                fixed: flip.fixed,
                same_run: flip.same_run,
            })
            .collect(),
    };
    Ok(Json(TestDetailView {
        test: TestListRow::of(&detail.test, detail.quarantine.is_some()),
        first_seen_at: detail.test.first_seen_at,
        last_failure_at: detail.test.last_failure_at,
        last_failure_run_id: detail.test.last_failure_run_id,
        last_failure_message: detail.test.last_failure_message.clone(),
        history: detail.history,
        next_cursor: detail.next_cursor,
        flakiness,
        quarantine: detail.quarantine.map(|quarantine| QuarantineView {
            reason: quarantine.reason,
            until: quarantine.until,
            by: quarantine.by,
            since: quarantine.since,
        }),
    }))
}

/// Query parameters of `GET /api/v1/test-cases/{test_case_id}/trend`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendParams {
    bucket: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    min_position: Option<i64>,
}

/// `GET /api/v1/test-cases/{test_case_id}/trend`: the test case's finished runs per bucket.
#[utoipa::path(get, path = "/api/v1/test-cases/{test_case_id}/trend", tag = "tests",
    params(("test_case_id" = uuid::Uuid, Path),
           ("bucket" = Option<String>, Query, description = "hour, day (default) or week", pattern = "^(hour|day|week)$"),
           ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "RFC 3339: runs finished at or after"),
           ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "RFC 3339: runs finished before"),
           ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "Buckets, oldest first (at most the newest 1000)", body = TrendView),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn trend(
    State(state): State<AppState>,
    _caller: Caller,
    path: PathResult,
    params: QueryResult<TrendParams>,
) -> Result<Json<TrendView>, ApiError> {
    let test_case_id = path_uuid(path, "test_case_id")?;
    let params = query(params)?;
    state.fresh(params.min_position).await?;
    let bucket = Bucket::parse(params.bucket.as_deref()).map_err(ReadModelError::from)?;
    let points = insights::trend(
        &state.pool,
        test_case_id,
        bucket,
        params.since,
        params.until,
    )
    .await?;
    Ok(Json(TrendView {
        test_case_id,
        bucket: params.bucket.unwrap_or_else(|| "day".to_owned()),
        points,
    }))
}

/// `POST /api/v1/tests/{test_id}/quarantine` `{reason, until?, test_case_id?}`:
/// `quarantine_test` as the caller; 202 `{test_id, command_id, position}`. Quarantining a test
/// already quarantined replaces its reason and end.
#[utoipa::path(post, path = "/api/v1/tests/{test_id}/quarantine", tag = "tests",
    params(("test_id" = uuid::Uuid, Path)),
    request_body(content = crate::routes::bodies::QuarantineTestRequest),
    responses((status = 202, description = "Accepted: quarantine_test", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed (executors)", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload (a blank reason, an end already past)", body = crate::openapi::ErrorBody),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    path: PathResult,
    payload: RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let test_id = path_uuid(path, "test_id")?;
    let payload = object(payload)?;
    if payload.contains_key("test_id") {
        return Err(ApiError::rejected(Rejection::new(
            RejectionCode::InvalidPayload,
            "payload.test_id: the path names the test; leave it out of the body",
        )));
    }
    let command: QuarantineTest = typed_body(payload, test_id)?;
    accepted(test_id, send(&state, &caller, &command).await?)
}

/// `DELETE /api/v1/tests/{test_id}/quarantine`: `release_test` as the caller; 202
/// `{test_id, command_id, position}`; 409 `not_quarantined` when it is not.
#[utoipa::path(delete, path = "/api/v1/tests/{test_id}/quarantine", tag = "tests",
    params(("test_id" = uuid::Uuid, Path)),
    responses((status = 202, description = "Accepted: release_test", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed (executors)", body = crate::openapi::ErrorBody),
              (status = 409, description = "not_quarantined", body = crate::openapi::ErrorBody),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    path: PathResult,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let test_id = path_uuid(path, "test_id")?;
    let command = ReleaseTest {
        test_id: TestId(test_id),
    };
    accepted(test_id, send(&state, &caller, &command).await?)
}

fn accepted(
    test_id: Uuid,
    accepted: crate::routes::Accepted,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"test_id": test_id, "command_id": accepted.command_id,
                    "position": accepted.position}),
        ),
    ))
}
