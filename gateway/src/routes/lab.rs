//! The lab's inventory: venvs, machines (never a secret: the read model holds none) and test
//! cases.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use runledger_readmodel::{PgPool, ReadModelError, lab};
use serde::Deserialize;
use serde_json::Value;

/// Query parameters of the inventory routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    min_position: Option<i64>,
}

/// Checks the parameters and waits for `min_position` if asked.
async fn fresh(
    state: &AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<(), ApiError> {
    let Query(params) = params.map_err(|err| ApiError::bad_request(err.body_text()))?;
    state.fresh(params.min_position).await
}

async fn rows(
    state: &AppState,
    params: Result<Query<Params>, QueryRejection>,
    list: impl AsyncFnOnce(&PgPool) -> Result<Vec<Value>, ReadModelError>,
) -> Result<Json<Value>, ApiError> {
    fresh(state, params).await?;
    Ok(Json(Value::Array(list(&state.pool).await?)))
}

/// `GET /api/v1/venvs`: `[{venv_id, name, machine_id, status, run_id, ...}]`, status one of
/// `provisioning`, `free`, `in_use`, `broken`, `removed`.
#[utoipa::path(get, path = "/api/v1/venvs", tag = "lab", params(("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "The venv pool"), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn venvs(
    State(state): State<AppState>,
    _caller: Caller,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    rows(&state, params, lab::venv_documents).await
}

/// `GET /api/v1/machines`: every machine, with whether it has a password or key, never either.
#[utoipa::path(get, path = "/api/v1/machines", tag = "lab", params(("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "Machines, without secrets"), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn machines(
    State(state): State<AppState>,
    _caller: Caller,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    rows(&state, params, lab::machine_documents).await
}

/// `GET /api/v1/test-cases`: every test case.
#[utoipa::path(get, path = "/api/v1/test-cases", tag = "lab", params(("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "Test cases"), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn test_cases(
    State(state): State<AppState>,
    _caller: Caller,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    rows(&state, params, lab::test_case_documents).await
}

/// `GET /api/v1/queue`: the queued runs in order, each with the reason it waits now.
#[utoipa::path(get, path = "/api/v1/queue", tag = "lab", params(("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "The queue with live reasons"), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn queue(
    State(state): State<AppState>,
    _caller: Caller,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    fresh(&state, params).await?;
    let queued = runledger_readmodel::queue(&state.pool, 1000).await?;
    Ok(Json(
        serde_json::to_value(queued).map_err(ApiError::internal)?,
    ))
}

/// `GET /api/v1/me`: who the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, description = "username and role"), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn me(caller: Caller) -> Json<Value> {
    let role = match caller.role {
        runledger_types::Role::Admin => "admin",
        runledger_types::Role::Member => "member",
    };
    Json(serde_json::json!({"username": caller.username, "role": role}))
}
