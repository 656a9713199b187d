//! Logging in and out. `POST /api/v1/tokens` checks a user's password and issues a random
//! bearer token, stored only as its SHA-256 with an expiry and the position of the user's last
//! event, also set as the dashboard's session cookie (a browser's `EventSource` cannot send
//! headers); `DELETE /api/v1/tokens/current` revokes it.
//!
//! A password check ([`check_password`]) goes through the shared failed-login limiter
//! ([`crate::limiter`]) first, then reads the account from the `accounts` read model, as fresh as
//! the user's stream in the log ([`runledger_readmodel::accounts`]), and runs
//! argon2 behind the semaphore ([`crate::passwords`]), a dummy hash standing in for an unknown
//! user: a wrong password, an unknown user and a disabled user cost the same.

use crate::auth::{COOKIE, Caller, hash, session_cookie};
use crate::client::ClientKey;
use crate::error::ApiError;
use crate::limiter::{self, Refused, RetryAfter};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use runledger_readmodel::accounts::{self, Account};
use runledger_readmodel::sessions::{self, NewToken};
use runledger_types::{Role, SecretString, Username};
use serde::Deserialize;
use serde_json::json;

/// A refused password check: an error answer, or 429 with `Retry-After`.
#[derive(Debug)]
pub enum Refusal {
    /// Any other answer.
    Api(ApiError),
    /// Too many failed logins from this address for this user (or from this address at all).
    Wait(RetryAfter),
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Api(err) => err.into_response(),
            Self::Wait(RetryAfter(seconds)) => {
                let err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_failed_logins",
                    format!("too many failed logins from this address; try again in {seconds} s"),
                );
                ([(RETRY_AFTER, seconds.to_string())], err).into_response()
            }
        }
    }
}

/// Checks `password` for `username` as `client`: `Some(account)` when it matches (disabled or
/// not), `None` when it does not or there is no such user; 429 while the client must wait.
#[tracing::instrument(skip_all, fields(username = %username, client = %client.0))]
pub async fn check_password(
    state: &AppState,
    client: &ClientKey,
    username: &str,
    password: SecretString,
) -> Result<Option<Account>, Refusal> {
    let limits = &state.settings.login_limits;
    match limiter::reserve(&state.pool, limits, username, &client.0).await {
        Ok(()) => {}
        Err(Refused::Wait(wait)) => {
            tracing::info!(wait_s = wait.0, "login refused: too many failures");
            return Err(Refusal::Wait(wait));
        }
        Err(Refused::Failed(err)) => return Err(err.into()),
    }
    // A name that cannot be a username has no account; it still costs an argon2 run.
    let account = match Username::parse(username) {
        Ok(name) => {
            let timeout = state.settings.freshness_timeout;
            accounts::current_account(&state.pool, &state.freshness, name.as_str(), timeout)
                .await
                .map_err(ApiError::from)?
        }
        Err(_) => None,
    };
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    if !state.passwords.verify(password, hash).await? {
        tracing::info!("failed login");
        return Ok(None);
    }
    limiter::succeeded(&state.pool, username, &client.0).await?;
    Ok(account)
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user's name.
    username: String,
    /// The user's password.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// `POST /api/v1/tokens`: 201 `{token, expires_at, username, role}`; 401 for a wrong username or
/// password (the same answer for both); 403 `user_disabled` for a disabled user's right
/// password; 429 with `Retry-After` after too many failures from the caller's address.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", security(()),
    request_body(content = Login),
    responses((status = 201, description = "A token (also set as the rl_token cookie)", body = crate::openapi::TokenBody),
              (status = 401, description = "Wrong username or password", body = crate::openapi::ErrorBody),
              (status = 403, description = "The user is disabled", body = crate::openapi::ErrorBody),
              (status = 429, description = "Too many failed logins from this address; see Retry-After", body = crate::openapi::ErrorBody)))]
pub async fn issue_token(
    State(state): State<AppState>,
    client: ClientKey,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(login) = body.map_err(|err| ApiError::bad_body(&err))?;
    let account = check_password(&state, &client, &login.username, login.password).await?;
    let Some(account) = account else {
        return Err(ApiError::unauthorized("wrong username or password").into());
    };
    if account.disabled {
        tracing::info!(username = %login.username, "login of a disabled user refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "user_disabled",
            format!("user {} is disabled", login.username),
        )
        .into());
    }
    let (token, expires_at) = insert_token(&state, &login.username, &account).await?;
    tracing::info!(username = %login.username, "token issued");
    let cookie = session_cookie(
        &token,
        state.settings.token_ttl,
        state.settings.secure_cookie,
    );
    let role = match account.role {
        Role::Admin => "admin",
        Role::Member => "member",
    };
    let body = json!({"token": token, "expires_at": expires_at, "username": login.username,
                      "role": role});
    Ok((StatusCode::CREATED, [(SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Stores a new token for `username`; returns it and its expiry.
async fn insert_token(
    state: &AppState,
    username: &str,
    account: &Account,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "rl_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let ttl = chrono::Duration::from_std(state.settings.token_ttl).map_err(ApiError::internal)?;
    let expires_at = Utc::now() + ttl;
    let token_hash = hash(&token);
    let new = NewToken {
        token_hash: &token_hash,
        username,
        role: account.role,
        expires_at,
        user_position: account.position,
    };
    sessions::insert_token(&state.pool, &new).await?;
    Ok((token, expires_at))
}

/// `DELETE /api/v1/tokens/current`: revokes the caller's token (and clears the cookie); 204.
#[utoipa::path(delete, path = "/api/v1/tokens/current", tag = "auth",
    responses((status = 204, description = "Revoked"), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
              (status = 415, description = "A cookie-authenticated request without Content-Type: application/json", body = crate::openapi::ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, [(HeaderName, String); 1]), ApiError> {
    // The notification reaches every gateway process when the revocation commits.
    sessions::revoke_token(&state.pool, &caller.token_hash).await?;
    state.tokens.forget(&caller.token_hash);
    let secure = if state.settings.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cleared = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}");
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cleared)]))
}
