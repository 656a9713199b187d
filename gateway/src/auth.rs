//! Authentication: `POST /api/v1/tokens` checks a user's argon2 password hash (from the user's
//! `user_registered` event) and issues a random bearer token, stored only as its SHA-256 with
//! an expiry, also set as the dashboard's `HttpOnly`, `SameSite=Strict` cookie (a browser's
//! `EventSource` cannot send headers); `DELETE /api/v1/tokens/current` revokes it. [`Caller`] is the extractor every
//! other route uses: 401 without a valid token, checked tokens cached briefly ([`TokenCache`];
//! revocations reach every gateway's cache through [`crate::revocations`]). Failed logins are
//! limited per username.

use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use runledger_secrets::verify_password;
use runledger_types::{PasswordHash, Role, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who is asking: the token's user and role.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The username; commands are sent with it as the actor.
    pub username: String,
    /// `admin` or `member`.
    pub role: Role,
    token_hash: Vec<u8>,
}

impl Caller {
    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Member => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{} is a member; only admins may do this", self.username),
            )),
        }
    }
}

/// The dashboard's session cookie: the same token, `HttpOnly`, `SameSite=Strict`.
pub const COOKIE: &str = "rl_token";

/// The token in the `rl_token` cookie, if any.
fn cookie_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, token)| token)
        .filter(|token| !token.is_empty())
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = match parts.headers.get(AUTHORIZATION) {
            Some(header) => header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .ok_or_else(|| {
                    ApiError::unauthorized("the Authorization header is not Bearer <token>")
                })?,
            None => cookie_token(&parts.headers)
                .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?,
        };
        let token_hash = hash(token);
        if let Some(caller) = state.tokens.get(&token_hash) {
            return Ok(caller);
        }
        let found: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT username, role, expires_at FROM gateway.tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
        )
        .bind(&token_hash)
        .fetch_optional(&state.pool)
        .await?;
        let (username, role, expires_at) = found
            .ok_or_else(|| ApiError::unauthorized("the token is unknown, expired or revoked"))?;
        let role = match role.as_str() {
            "admin" => Role::Admin,
            _ => Role::Member,
        };
        let caller = Caller {
            username,
            role,
            token_hash,
        };
        state.tokens.put(&caller, expires_at);
        Ok(caller)
    }
}

/// How long a checked token is trusted without asking Postgres again. A revocation through any
/// gateway process reaches the others' caches at once (see [`crate::revocations`]); this bounds
/// how long a revoked token keeps working while that notification cannot be received.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most tokens remembered; the cache is emptied when it is full.
const TOKEN_CACHE_SIZE: usize = 10_000;

/// Recently checked tokens, so most requests cost no token query.
#[derive(Debug, Default)]
pub struct TokenCache(Mutex<HashMap<Vec<u8>, Cached>>);

/// A checked token: who, when it was checked, when it expires.
type Cached = (Caller, Instant, DateTime<Utc>);

impl TokenCache {
    fn get(&self, token_hash: &[u8]) -> Option<Caller> {
        self.lock()
            .get(token_hash)
            .filter(|(_, checked, expires_at)| {
                checked.elapsed() < TOKEN_CACHE_TTL && Utc::now() < *expires_at
            })
            .map(|(caller, _, _)| caller.clone())
    }

    fn put(&self, caller: &Caller, expires_at: DateTime<Utc>) {
        let mut cache = self.lock();
        if cache.len() >= TOKEN_CACHE_SIZE {
            cache.clear();
        }
        let entry = (caller.clone(), Instant::now(), expires_at);
        cache.insert(caller.token_hash.clone(), entry);
    }

    /// Drops one token: it is checked against Postgres on its next use.
    pub(crate) fn forget(&self, token_hash: &[u8]) {
        self.lock().remove(token_hash);
    }

    /// Drops every token (a revocation may have been missed).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Cached>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Failed logins allowed per username within [`LOGIN_WINDOW`].
const MAX_FAILED_LOGINS: u32 = 5;
/// The window failed logins are counted in.
const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// Counts failed logins per username.
#[derive(Debug, Default)]
pub struct LoginLimiter(Mutex<HashMap<String, (u32, Instant)>>);

impl LoginLimiter {
    /// `Err(seconds to wait)` while `username` has used up its failed logins.
    fn check(&self, username: &str) -> Result<(), u64> {
        let failures = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match failures.get(username) {
            Some((count, since)) if *count >= MAX_FAILED_LOGINS => {
                let left = LOGIN_WINDOW.saturating_sub(since.elapsed());
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(left.as_secs().max(1))
                }
            }
            _ => Ok(()),
        }
    }

    fn failed(&self, username: &str) {
        let mut failures = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = failures
            .entry(username.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOGIN_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeeded(&self, username: &str) {
        let mut failures = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(username);
    }
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: SecretString,
}

/// `POST /api/v1/tokens`: 201 `{token, expires_at, username, role}`; 401 for a wrong username or
/// password (the same answer for both); 429 after too many failures.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", security(()),
    request_body(content = Object, description = "{username, password}"),
    responses((status = 201, description = "A token (also set as the rl_token cookie)", body = crate::openapi::TokenBody),
              (status = 401, description = "Wrong username or password", body = crate::openapi::ErrorBody),
              (status = 429, description = "Too many failed logins", body = crate::openapi::ErrorBody)))]
pub async fn issue_token(
    State(state): State<AppState>,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<
    (
        StatusCode,
        [(axum::http::HeaderName, String); 1],
        Json<Value>,
    ),
    ApiError,
> {
    let Json(login) = body.map_err(|err| ApiError::bad_body(&err))?;
    if let Err(wait) = state.logins.check(&login.username) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_logins",
            format!(
                "too many failed logins for {}; try again in {wait} s",
                login.username
            ),
        ));
    }
    let registered: Option<Value> = sqlx::query_scalar(
        "SELECT data FROM events WHERE stream_id = $1 AND type = 'user_registered' \
         ORDER BY position LIMIT 1",
    )
    .bind(format!("user-{}", login.username))
    .fetch_optional(&state.pool)
    .await?;
    let user = registered.and_then(|data| {
        let hash = data.get("password_hash")?.as_str()?.to_owned();
        let role = data.get("role")?.as_str()?.to_owned();
        Some((PasswordHash(hash), role))
    });
    let password = login.password;
    let verified = match user {
        Some((hash, role)) => {
            let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .map_err(ApiError::internal)?;
            ok.then_some(role)
        }
        None => None,
    };
    let Some(role) = verified else {
        state.logins.failed(&login.username);
        tracing::info!(username = %login.username, "failed login");
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    state.logins.succeeded(&login.username);
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "rl_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let ttl = chrono::Duration::from_std(state.settings.token_ttl).map_err(ApiError::internal)?;
    let expires_at: DateTime<Utc> = Utc::now() + ttl;
    sqlx::query(
        "INSERT INTO gateway.tokens (token_hash, username, role, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash(&token))
    .bind(&login.username)
    .bind(&role)
    .bind(expires_at)
    .execute(&state.pool)
    .await?;
    tracing::info!(username = %login.username, "token issued");
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        state.settings.token_ttl.as_secs()
    );
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::SET_COOKIE, cookie)],
        Json(
            json!({"token": token, "expires_at": expires_at, "username": login.username,
                    "role": role}),
        ),
    ))
}

/// `DELETE /api/v1/tokens/current`: revokes the caller's token (and clears the cookie); 204.
#[utoipa::path(delete, path = "/api/v1/tokens/current", tag = "auth",
    responses((status = 204, description = "Revoked"), (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, [(axum::http::HeaderName, String); 1]), ApiError> {
    // The notification reaches every gateway process when the revocation commits.
    sqlx::query(
        "WITH revoked AS (UPDATE gateway.tokens SET revoked_at = now() WHERE token_hash = $1 \
         RETURNING token_hash) SELECT pg_notify($2, encode(token_hash, 'base64')) FROM revoked",
    )
    .bind(&caller.token_hash)
    .bind(crate::revocations::REVOKED_CHANNEL)
    .execute(&state.pool)
    .await?;
    state.tokens.forget(&caller.token_hash);
    let cleared = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((
        StatusCode::NO_CONTENT,
        [(axum::http::header::SET_COOKIE, cleared)],
    ))
}
