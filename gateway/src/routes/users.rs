//! Managing accounts over HTTP: `disable_user`, `change_password` and `revoke_tokens`, each
//! published as the caller (the handler decides who may). Each ends the user's tokens on every
//! gateway at once (see [`crate::revocations`]), the caller's own token included when it is
//! theirs: after changing one's own password one logs in again with the new one.

use crate::auth::Caller;
use crate::client::ClientKey;
use crate::error::ApiError;
use crate::login::{Refusal, check_password};
use crate::routes::send;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use runledger_types::command::{ChangePassword, CommandPayload, DisableUser, RevokeTokens};
use runledger_types::{OutgoingSecret, SecretString, Username};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn username(path: Result<Path<String>, PathRejection>) -> Result<Username, ApiError> {
    let Path(raw) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    Username::parse(&raw).map_err(|err| ApiError::bad_request(format!("username: {err}")))
}

async fn submit<C: CommandPayload>(state: &AppState, caller: &Caller, command: &C) -> Answer {
    let accepted = send(state, caller, command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"command_id": accepted.command_id, "position": accepted.position})),
    ))
}

/// Publishes the command `about` makes of the path's username.
async fn about_user<C: CommandPayload>(
    state: &AppState,
    caller: &Caller,
    path: Result<Path<String>, PathRejection>,
    about: impl FnOnce(Username) -> C,
) -> Answer {
    let username = username(path)?;
    submit(state, caller, &about(username)).await
}

/// `POST /api/v1/users/{username}/disable`: `disable_user` (admins).
#[utoipa::path(post, path = "/api/v1/users/{username}/disable", tag = "lab",
    params(("username" = String, Path)),
    responses((status = 202, description = "Accepted: disable_user (admins); the user's tokens stop working on every gateway", body = crate::openapi::AcceptedBody),
              (status = 400, description = "Bad username", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
              (status = 403, description = "Not an admin, or disabling oneself", body = crate::openapi::ErrorBody),
              (status = 404, description = "No such user", body = crate::openapi::ErrorBody),
              (status = 415, description = "A cookie-authenticated request without Content-Type: application/json", body = crate::openapi::ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    about_user(&state, &caller, path, |username| DisableUser { username }).await
}

/// `DELETE /api/v1/users/{username}/tokens`: `revoke_tokens` (admins).
#[utoipa::path(delete, path = "/api/v1/users/{username}/tokens", tag = "lab",
    params(("username" = String, Path)),
    responses((status = 202, description = "Accepted: revoke_tokens (admins); every token of the user stops working", body = crate::openapi::AcceptedBody),
              (status = 400, description = "Bad username", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
              (status = 403, description = "Not an admin", body = crate::openapi::ErrorBody),
              (status = 404, description = "No such user", body = crate::openapi::ErrorBody),
              (status = 415, description = "A cookie-authenticated request without Content-Type: application/json", body = crate::openapi::ErrorBody)))]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    about_user(&state, &caller, path, |username| RevokeTokens { username }).await
}

/// `PUT /api/v1/users/{username}/password` body: `change_password`'s payload but the user,
/// which the path names, and with the caller's current password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The new password, hashed by the handler.
    #[schema(schema_with = runledger_types::command::user_password_schema)]
    password: SecretString,
    /// Required when changing one's own password: a stolen session alone cannot take the
    /// account over.
    #[serde(default)]
    current_password: Option<SecretString>,
}

/// `PUT /api/v1/users/{username}/password` `{password, current_password}`: `change_password`,
/// for oneself (with `current_password`, checked like a login) or by an admin for anyone.
#[utoipa::path(put, path = "/api/v1/users/{username}/password", tag = "lab",
    params(("username" = String, Path)),
    request_body(content = NewPassword),
    responses((status = 202, description = "Accepted: change_password; every token of the user (the caller's too, if theirs) stops working", body = crate::openapi::AcceptedBody),
              (status = 400, description = "Bad body, or current_password missing", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token, or a wrong current_password", body = crate::openapi::ErrorBody),
              (status = 403, description = "A member changing another user's password", body = crate::openapi::ErrorBody),
              (status = 404, description = "No such user", body = crate::openapi::ErrorBody),
              (status = 415, description = "Not JSON", body = crate::openapi::ErrorBody),
              (status = 422, description = "Refused password (8-1024 characters)", body = crate::openapi::ErrorBody),
              (status = 429, description = "Too many wrong current passwords; see Retry-After", body = crate::openapi::ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    client: ClientKey,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let username = username(path)?;
    let Json(body) = body.map_err(|err| ApiError::bad_body(&err))?;
    if username.as_str() == caller.username {
        let current = body.current_password.ok_or_else(|| {
            ApiError::bad_request("current_password: required to change one's own password")
        })?;
        if check_password(&state, &client, username.as_str(), current)
            .await?
            .is_none()
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong_password",
                "current_password is wrong",
            )
            .into());
        }
    }
    let command = ChangePassword {
        username,
        password: OutgoingSecret::from(body.password),
    };
    Ok(submit(&state, &caller, &command).await?)
}
