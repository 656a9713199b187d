//! Managing the lab over HTTP: users, machines, venvs and test cases. Each route publishes the
//! matching command as the caller; the handler decides who may (admins manage everything,
//! members register machines and manage the machines they own and their venvs), and a refusal
//! comes back as its 4xx. Bodies are the commands' payloads (docs/commands.md), decoded into the
//! payload types ([`crate::routes::bodies`]); ids absent from a creating body are generated.
//! Secrets in bodies travel as `OutgoingSecret`s (which never print) to the handler, which seals
//! or hashes them; the gateway never logs a body.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::bodies::{
    AddVenvRequest, DefineTestCaseRequest, IdField, RawBody, RegisterMachineRequest,
    UpdateMachineRequest, new_id, object, typed, typed_body,
};
use crate::routes::{parse_uuid, send};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use runledger_types::command::{
    AddVenv, CommandPayload, DefineTestCase, RegisterMachine, RegisterUser, RemoveVenv,
    RetireMachine, UpdateMachine,
};
use runledger_types::{MachineId, OutgoingSecret, VenvId};
use serde_json::{Value, json};
use uuid::Uuid;

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn path_id(path: Result<Path<String>, PathRejection>, name: &str) -> Result<Uuid, ApiError> {
    let Path(raw) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    parse_uuid(&raw, name)
}

/// Sends `command` and answers 202 with `{<id_field>: id, command_id, position}`.
async fn submit<C: CommandPayload>(
    state: &AppState,
    caller: &Caller,
    command: &C,
    (id_field, id): (&str, Value),
) -> Answer {
    let accepted = send(state, caller, command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({id_field: id, "command_id": accepted.command_id,
                    "position": accepted.position})),
    ))
}

/// A creating route: the body's id or a fresh one, the body typed as `C`, sent.
async fn create<C: IdField>(state: &AppState, caller: &Caller, body: RawBody) -> Answer {
    let payload = object(body)?;
    let id = new_id(&payload, C::ID_FIELD)?;
    let command: C = typed_body(payload, id)?;
    submit(state, caller, &command, (C::ID_FIELD, json!(id))).await
}

/// `POST /api/v1/users` `{username, role, password}`: `register_user` (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "lab", request_body(content = RegisterUser<OutgoingSecret>, description = "register_user's payload; the password is hashed by the handler"), 
    responses((status = 202, description = "Accepted: register_user (admins)", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn register_user(
    State(state): State<AppState>,
    caller: Caller,
    payload: RawBody,
) -> Answer {
    let payload = object(payload)?;
    // The username names the answer, so its absence is the route's 400, not a payload's 422.
    if !payload.contains_key("username") {
        return Err(ApiError::bad_request("username: required"));
    }
    let command: RegisterUser<OutgoingSecret> = typed(payload)?;
    let username = json!(command.username);
    submit(&state, &caller, &command, ("username", username)).await
}

/// `POST /api/v1/machines`: `register_machine`.
#[utoipa::path(post, path = "/api/v1/machines", tag = "lab", request_body(content = RegisterMachineRequest), 
    responses((status = 202, description = "Accepted: register_machine", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn register_machine(
    State(state): State<AppState>,
    caller: Caller,
    payload: RawBody,
) -> Answer {
    create::<RegisterMachine<OutgoingSecret>>(&state, &caller, payload).await
}

/// `PATCH /api/v1/machines/{machine_id}`: `update_machine` with the fields given.
#[utoipa::path(patch, path = "/api/v1/machines/{machine_id}", tag = "lab", params(("machine_id" = uuid::Uuid, Path)), request_body(content = UpdateMachineRequest), 
    responses((status = 202, description = "Accepted: update_machine", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn update_machine(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    payload: RawBody,
) -> Answer {
    let id = path_id(path, "machine_id")?;
    let payload = object(payload)?;
    if payload.contains_key("machine_id") {
        return Err(ApiError::rejected(runledger_types::Rejection::new(
            runledger_types::RejectionCode::InvalidPayload,
            "payload.machine_id: the path names the machine; leave it out of the body",
        )));
    }
    let command: UpdateMachine<OutgoingSecret> = typed_body(payload, id)?;
    submit(&state, &caller, &command, ("machine_id", json!(id))).await
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
    let command = RetireMachine {
        machine_id: MachineId::from(id),
    };
    submit(&state, &caller, &command, ("machine_id", json!(id))).await
}

/// `POST /api/v1/venvs`: `add_venv`.
#[utoipa::path(post, path = "/api/v1/venvs", tag = "lab", request_body(content = AddVenvRequest), 
    responses((status = 202, description = "Accepted: add_venv", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn add_venv(State(state): State<AppState>, caller: Caller, payload: RawBody) -> Answer {
    create::<AddVenv>(&state, &caller, payload).await
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
    let command = RemoveVenv {
        venv_id: VenvId::from(id),
    };
    submit(&state, &caller, &command, ("venv_id", json!(id))).await
}

/// `POST /api/v1/test-cases`: `define_test_case` (admins only).
#[utoipa::path(post, path = "/api/v1/test-cases", tag = "lab", request_body(content = DefineTestCaseRequest), 
    responses((status = 202, description = "Accepted: define_test_case (admins)", body = crate::openapi::AcceptedBody),
              (status = 403, description = "Not allowed", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused payload", body = crate::openapi::ErrorBody), (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn define_test_case(
    State(state): State<AppState>,
    caller: Caller,
    payload: RawBody,
) -> Answer {
    create::<DefineTestCase<OutgoingSecret>>(&state, &caller, payload).await
}
