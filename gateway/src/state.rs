//! What every request handler shares.

use crate::error::ApiError;
use crate::passwords::PasswordChecker;
use runledger_bus::CommandSender;
use runledger_readmodel::Freshness;
use runledger_readmodel::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How long an issued token is valid.
    pub token_ttl: Duration,
    /// How long a `POST` waits for its command's outcome.
    pub command_timeout: Duration,
    /// How long a `GET` with `min_position` waits for the read models.
    pub freshness_timeout: Duration,
    /// `/readyz` fails while the read models lag the log by more events than this.
    pub max_ready_lag: i64,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: crate::metrics::MetricsToken,
    /// The session cookie carries `Secure` (sent over HTTPS only); off only in development.
    pub secure_cookie: bool,
    /// Count failed logins by the last `X-Forwarded-For` address instead of the TCP peer: only
    /// behind a proxy that sets it, or any client could pick its own address.
    pub trust_forwarded_for: bool,
    /// Most argon2 password checks running at once.
    pub password_checks: usize,
    /// The failed-login limits.
    pub login_limits: crate::limiter::LoginLimits,
    /// The components of this process that cannot go on, and why: `/readyz` fails while any
    /// is (the gateway itself, when the events stream holds another log's events).
    pub wedges: runledger_bus::Wedges,
}

impl GatewaySettings {
    /// Defaults for a gateway on `addr`: tokens valid for 12 hours, a `Secure` cookie, the TCP
    /// peer as the client address, one password check per core.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            token_ttl: Duration::from_secs(12 * 3600),
            command_timeout: Duration::from_secs(10),
            freshness_timeout: Duration::from_secs(5),
            max_ready_lag: 10_000,
            metrics_token: crate::metrics::MetricsToken::default(),
            secure_cookie: true,
            trust_forwarded_for: false,
            password_checks: PasswordChecker::default_concurrency(),
            login_limits: crate::limiter::LoginLimits::default(),
            wedges: runledger_bus::Wedges::default(),
        }
    }
}

/// The gateway's connections and settings, shared: axum clones the state for every request,
/// so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Wraps the shared parts.
    pub fn from_shared(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// Postgres, for runledger-readmodel's queries: read models, the log (read only) and the
    /// session tables.
    pub pool: PgPool,
    /// NATS, for readiness and live streams.
    pub nats: async_nats::Client,
    /// Subject names.
    pub names: runledger_bus::BusNames,
    /// The identity of the log behind the read models.
    pub log: runledger_types::LogId,
    /// Publishes commands for callers.
    pub commands: CommandSender,
    /// The read models' position.
    pub freshness: Freshness,
    /// The run events, one subscription shared by every live stream.
    pub live: crate::live_hub::LiveHub,
    /// Settings.
    pub settings: Arc<GatewaySettings>,
    /// argon2 checks, bounded.
    pub passwords: Arc<PasswordChecker>,
    /// Recently checked tokens.
    pub tokens: Arc<crate::auth::TokenCache>,
    /// Cancelled when the gateway shuts down: live streams end then, so that the graceful
    /// shutdown is not held up by a dashboard left open.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Waits until the read models include `min_position`, if asked; 503 when they do not in
    /// time. A position the log has not reached yet was never answered to anyone: 409
    /// `beyond_log_head` at once, rather than a wait that cannot end well.
    pub async fn fresh(&self, min_position: Option<i64>) -> Result<(), ApiError> {
        let Some(position) = min_position else {
            return Ok(());
        };
        if position > self.freshness.position() {
            let head = runledger_readmodel::log_head(&self.pool).await?;
            if position > head {
                return Err(ApiError::beyond_log_head(position, head));
            }
        }
        self.freshness
            .wait_for(position, self.settings.freshness_timeout)
            .await
            .map(|_| ())
            .map_err(ApiError::unavailable)
    }
}
