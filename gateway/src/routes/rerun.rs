//! `POST /api/v1/runs/{run_id}/rerun`: a new run of a finished run's test case, linked to it,
//! running its failures again (`only: "failed"`), some tests by id, or the whole suite.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::bodies::{RawBody, object};
use crate::routes::{path_uuid, send};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use runledger_readmodel::rerun::{self as reruns, RerunSelection};
use runledger_readmodel::runs as run_reads;
use runledger_types::command::RerunOnly;
use runledger_types::{Rejection, RejectionCode, RunId, TestId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// The body of a rerun: which tests (`only` or `tests`; neither: the whole suite) and,
/// optionally, the new run's id.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunBody {
    /// The new run's id; generated when absent.
    #[serde(default)]
    run_id: Option<Uuid>,
    /// `failed`: the tests that failed or errored in the run's last attempt.
    #[serde(default)]
    only: Option<RerunOnly>,
    /// These tests (ids as `GET /api/v1/tests` lists them).
    #[serde(default)]
    tests: Vec<TestId>,
}

/// What the answer of an accepted rerun holds.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RerunAccepted {
    /// The new run.
    pub run_id: Uuid,
    /// The run it reruns.
    pub rerun_of: Uuid,
    /// The `start_run` command's id.
    pub command_id: Uuid,
    /// The log position of its last event: pass as `min_position` to later reads.
    pub position: i64,
}

/// `POST /api/v1/runs/{run_id}/rerun`: publishes `start_run` as the caller with `rerun_of` the
/// path's run, its test case, and the env, labels and machine it asked for; 202
/// `{run_id, rerun_of, command_id, position}`. The handler resolves the selection
/// (`nothing_to_rerun`, `run_not_finished`, `unknown_test` otherwise).
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/rerun", tag = "runs",
    params(("run_id" = uuid::Uuid, Path, description = "The finished run to rerun")),
    request_body(content = RerunBody),
    responses((status = 202, description = "Accepted: the new run", body = RerunAccepted),
              (status = 404, description = "No such run (`not_found`), or a test no run of its test case reported (`unknown_test`)", body = crate::openapi::ErrorBody),
              (status = 409, description = "The run has not finished (`run_not_finished`), or has no failure to rerun (`nothing_to_rerun`)", body = crate::openapi::ErrorBody),
              (status = 422, description = "Both `only` and `tests`, or more than 10,000 tests (`invalid_payload`)", body = crate::openapi::ErrorBody),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn rerun(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rerun_of = path_uuid(path, "run_id")?;
    let body: RerunBody = serde_json::from_value(Value::Object(object(body)?))
        .map_err(|err| invalid(format!("payload: {err}")))?;
    // A run its caller just saw end may not have reached the read models yet: then they are
    // waited for up to the log's head before the run is called unknown or unfinished.
    let old = match run_reads::run(&state.pool, rerun_of).await? {
        Some(run) if run.status.is_final() => Some(run),
        _ => {
            let head = runledger_readmodel::log_head(&state.pool).await?;
            state.fresh(Some(head)).await?;
            run_reads::run(&state.pool, rerun_of).await?
        }
    }
    .ok_or_else(|| ApiError::not_found(format!("no run {rerun_of}")))?;
    let run_id = body.run_id.unwrap_or_else(Uuid::now_v7);
    let selection = RerunSelection {
        only: body.only,
        tests: body.tests,
    };
    let command =
        reruns::rerun(&old, RunId::from(run_id), selection).map_err(ApiError::internal)?;
    let accepted = send(&state, &caller, &command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": run_id, "rerun_of": rerun_of,
                    "command_id": accepted.command_id, "position": accepted.position})),
    ))
}

fn invalid(message: String) -> ApiError {
    ApiError::rejected(Rejection::new(RejectionCode::InvalidPayload, message))
}
