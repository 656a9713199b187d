//! Managing the lab over HTTP: users, machines, venvs and test cases. Each route publishes the
//! matching command as the caller; the handler decides who may (admins manage everything,
//! members register machines and manage the machines they own and their venvs), and a refusal
//! comes back as its 4xx. Bodies are the commands' payloads (docs/commands.md); ids absent from a
//! creating body are generated. Secrets in bodies go to the handler, which seals or hashes them;
//! the gateway never logs a body.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{parse_uuid, send};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use uuid::Uuid;

type Body = Result<Json<Map<String, Value>>, JsonRejection>;
type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn body(body: Body) -> Result<Map<String, Value>, ApiError> {
    body.map(|Json(map)| map)
        .map_err(|err| ApiError::bad_body(&err))
}

fn path_id(path: Result<Path<String>, PathRejection>, name: &str) -> Result<Uuid, ApiError> {
    let Path(raw) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    parse_uuid(&raw, name)
}

/// Sends `command_type` with `payload` (its `id_field` set to `id`) and answers 202 with the id.
async fn submit(
    state: &AppState,
    caller: &Caller,
    command_type: &str,
    mut payload: Map<String, Value>,
    id_field: &str,
    id: Value,
) -> Answer {
    payload.insert(id_field.to_owned(), id.clone());
    let accepted = send(state, caller, command_type, Value::Object(payload)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({id_field: id, "command_id": accepted.command_id,
                    "position": accepted.position})),
    ))
}

/// The id a creating body names in `field`, or a fresh one.
fn new_id(payload: &Map<String, Value>, field: &str) -> Result<Value, ApiError> {
    match payload.get(field) {
        None => Ok(json!(Uuid::now_v7())),
        Some(Value::String(raw)) => Ok(json!(parse_uuid(raw, field)?)),
        Some(_) => Err(ApiError::bad_request(format!(
            "{field}: must be a uuid string"
        ))),
    }
}

/// `POST /api/v1/users` `{username, role, password}`: `register_user` (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "lab", request_body(content = Object, description = "The command's payload (docs/commands.md)"), 
    responses((status = 202, description = "Accepted: register_user (admins)", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn register_user(State(state): State<AppState>, caller: Caller, payload: Body) -> Answer {
    let payload = body(payload)?;
    let username = payload
        .get("username")
        .cloned()
        .ok_or_else(|| ApiError::bad_request("username: required"))?;
    submit(
        &state,
        &caller,
        "register_user",
        payload,
        "username",
        username,
    )
    .await
}

/// `POST /api/v1/machines`: `register_machine`.
#[utoipa::path(post, path = "/api/v1/machines", tag = "lab", request_body(content = Object, description = "The command's payload (docs/commands.md)"), 
    responses((status = 202, description = "Accepted: register_machine", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn register_machine(
    State(state): State<AppState>,
    caller: Caller,
    payload: Body,
) -> Answer {
    let payload = body(payload)?;
    let id = new_id(&payload, "machine_id")?;
    submit(
        &state,
        &caller,
        "register_machine",
        payload,
        "machine_id",
        id,
    )
    .await
}

/// `PATCH /api/v1/machines/{machine_id}`: `update_machine` with the fields given.
#[utoipa::path(patch, path = "/api/v1/machines/{machine_id}", tag = "lab", params(("machine_id" = uuid::Uuid, Path)), request_body(content = Object, description = "The command's payload (docs/commands.md)"), 
    responses((status = 202, description = "Accepted: update_machine", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn update_machine(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    payload: Body,
) -> Answer {
    let id = path_id(path, "machine_id")?;
    let payload = body(payload)?;
    submit(
        &state,
        &caller,
        "update_machine",
        payload,
        "machine_id",
        json!(id),
    )
    .await
}

/// `DELETE /api/v1/machines/{machine_id}`: `retire_machine`.
#[utoipa::path(delete, path = "/api/v1/machines/{machine_id}", tag = "lab", params(("machine_id" = uuid::Uuid, Path)), 
    responses((status = 202, description = "Accepted: retire_machine", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn retire_machine(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = path_id(path, "machine_id")?;
    submit(
        &state,
        &caller,
        "retire_machine",
        Map::new(),
        "machine_id",
        json!(id),
    )
    .await
}

/// `POST /api/v1/venvs`: `add_venv`.
#[utoipa::path(post, path = "/api/v1/venvs", tag = "lab", request_body(content = Object, description = "The command's payload (docs/commands.md)"), 
    responses((status = 202, description = "Accepted: add_venv", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn add_venv(State(state): State<AppState>, caller: Caller, payload: Body) -> Answer {
    let payload = body(payload)?;
    let id = new_id(&payload, "venv_id")?;
    submit(&state, &caller, "add_venv", payload, "venv_id", id).await
}

/// `DELETE /api/v1/venvs/{venv_id}`: `remove_venv`.
#[utoipa::path(delete, path = "/api/v1/venvs/{venv_id}", tag = "lab", params(("venv_id" = uuid::Uuid, Path)), 
    responses((status = 202, description = "Accepted: remove_venv", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn remove_venv(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = path_id(path, "venv_id")?;
    submit(
        &state,
        &caller,
        "remove_venv",
        Map::new(),
        "venv_id",
        json!(id),
    )
    .await
}

/// `POST /api/v1/test-cases`: `define_test_case` (admins only).
#[utoipa::path(post, path = "/api/v1/test-cases", tag = "lab", request_body(content = Object, description = "The command's payload (docs/commands.md)"), 
    responses((status = 202, description = "Accepted: define_test_case (admins)", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn define_test_case(
    State(state): State<AppState>,
    caller: Caller,
    payload: Body,
) -> Answer {
    let payload = body(payload)?;
    let id = new_id(&payload, "test_case_id")?;
    submit(
        &state,
        &caller,
        "define_test_case",
        payload,
        "test_case_id",
        id,
    )
    .await
}
