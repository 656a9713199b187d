//! Authentication of every request but the login ([`crate::login`] issues the tokens).
//! [`Caller`] is the extractor every route uses: the bearer token, or the dashboard's cookie, is
//! looked up by its SHA-256 in `gateway.tokens`; 401 unless it exists, has not expired, was not
//! revoked, and no `user_disabled`, `password_changed` or `tokens_revoked` event of its user
//! came after the login that issued it. Checked tokens are cached briefly ([`TokenCache`]);
//! revocations and those user events reach every gateway's cache through
//! [`crate::revocations`].

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use runledger_types::Role;
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
    pub(crate) token_hash: Vec<u8>,
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

/// The dashboard's session cookie: the same token, `HttpOnly`, `SameSite=Strict`, and `Secure`
/// unless the gateway runs in development mode.
pub const COOKIE: &str = "rl_token";

/// The `Set-Cookie` value carrying `token` for `max_age`; `Secure` when `secure`.
pub fn session_cookie(token: &str, max_age: std::time::Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// The token in the `rl_token` cookie, if any.
pub(crate) fn cookie_token(headers: &axum::http::HeaderMap) -> Option<&str> {
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

/// The SHA-256 of a token: all the gateway stores of it.
pub(crate) fn hash(token: &str) -> Vec<u8> {
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
        let generation = state.tokens.generation();
        let found = runledger_readmodel::sessions::valid_token(&state.pool, &token_hash).await?;
        let runledger_readmodel::sessions::ValidToken {
            username,
            role,
            expires_at,
        } = found
            .ok_or_else(|| ApiError::unauthorized("the token is unknown, expired or revoked"))?;
        let caller = Caller {
            username,
            role,
            token_hash,
        };
        state.tokens.put(&caller, expires_at, generation);
        Ok(caller)
    }
}

/// How long a checked token is trusted without asking Postgres again. A revocation through any
/// gateway process reaches the others' caches at once (see [`crate::revocations`]); this bounds
/// how long a revoked token keeps working while that notification cannot be received.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most tokens remembered; the cache is emptied when it is full.
const TOKEN_CACHE_SIZE: usize = 10_000;

/// Recently checked tokens, so most requests cost no token query. Each forgetting bumps a
/// generation; a check that began before it is not cached, so a token checked just before its
/// revocation committed cannot be cached after the revocation was heard.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Vec<u8>, Cached>>,
    generation: std::sync::atomic::AtomicU64,
}

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

    /// The generation to hand to [`TokenCache::put`] after checking a token.
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn put(&self, caller: &Caller, expires_at: DateTime<Utc>, checked_in: u64) {
        let mut cache = self.lock();
        if self.generation() != checked_in {
            return;
        }
        if cache.len() >= TOKEN_CACHE_SIZE {
            cache.clear();
        }
        let entry = (caller.clone(), Instant::now(), expires_at);
        cache.insert(caller.token_hash.clone(), entry);
    }

    /// Drops one token: it is checked against Postgres on its next use.
    pub(crate) fn forget(&self, token_hash: &[u8]) {
        let mut cache = self.lock();
        self.bump();
        cache.remove(token_hash);
    }

    /// Drops every token of `username`: each is checked against Postgres on its next use.
    pub(crate) fn forget_user(&self, username: &str) {
        let mut cache = self.lock();
        self.bump();
        cache.retain(|_, (caller, _, _)| caller.username != username);
    }

    /// Drops every token (a revocation may have been missed).
    pub(crate) fn clear(&self) {
        let mut cache = self.lock();
        self.bump();
        cache.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Cached>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
