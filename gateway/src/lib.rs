//! The HTTP gateway: a thin axum service over the read models, behind bearer-token
//! authentication. Every read (read models, a run's audit trail and per-test results in the log,
//! accounts, its own session tables) is a typed function of runledger-readmodel; `POST`s publish
//! commands for the caller over NATS and answer once the handler has decided them. Routes:
//! contract §4, under `/api/v1`, plus `/healthz` and `/readyz`.
//!
//! Depends on the read models, the bus and the secrets crate (password checks); neither sqlx nor
//! the event store: it never writes the log, and reads it only through runledger-readmodel.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod csrf;
pub mod dashboard;
pub mod error;
pub mod limiter;
pub mod live_hub;
pub mod login;
pub mod metrics;
pub mod openapi;
pub mod passwords;
pub mod revocations;
pub mod routes;
mod spans;
pub mod state;

pub use state::{AppState, GatewaySettings};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{delete, get, patch, post, put};
use error::ApiError;
use routes::{groups, health, lab, manage, rerun, runs, users};
use runledger_bus::{BusNames, CommandSender};
use runledger_readmodel::Freshness;
use runledger_readmodel::PgPool;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// How often the gateway looks at whether the events stream is still its log's.
const CLAIM_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest request body accepted (a test case's files travel in one).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Why the gateway stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// It could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The read models' position could not be followed.
    #[error(transparent)]
    ReadModel(#[from] runledger_readmodel::ReadModelError),
    /// Serving failed.
    #[error("serving HTTP failed: {0}")]
    Serve(std::io::Error),
    /// The dummy password hash could not be made.
    #[error("cannot prepare password checks: {0}")]
    Passwords(#[from] passwords::PasswordsError),
}

impl AppState {
    /// The state of a gateway over `pool` and `nats`.
    pub async fn new(
        pool: PgPool,
        nats: async_nats::Client,
        names: BusNames,
        settings: GatewaySettings,
        shutdown: CancellationToken,
    ) -> Result<Self, GatewayError> {
        metrics::handle();
        let freshness = Freshness::start(pool.clone(), shutdown.clone()).await?;
        let log = runledger_readmodel::log_id(&pool).await?;
        let watch = runledger_bus::ClaimWatch {
            js: runledger_bus::jetstream(nats.clone()),
            names: names.clone(),
            ours: log,
            wedges: settings.wedges.clone(),
            component: "gateway",
            every: CLAIM_CHECK_EVERY,
        };
        tokio::spawn(runledger_bus::watch_claim(watch, shutdown.clone()));
        let live = live_hub::LiveHub::start(&nats, &names, log, shutdown.clone()).await;
        let tokens = Arc::new(auth::TokenCache::default());
        revocations::follow(pool.clone(), tokens.clone(), shutdown.clone());
        limiter::keep_pruning(pool.clone(), shutdown.clone());
        let passwords = passwords::PasswordChecker::new(settings.password_checks).await?;
        Ok(Self::from_shared(state::Shared {
            commands: CommandSender::new(nats.clone(), names.clone(), settings.command_timeout, 2),
            names,
            log,
            pool,
            nats,
            freshness,
            live,
            settings: Arc::new(settings),
            passwords: Arc::new(passwords),
            tokens,
            shutdown,
        }))
    }
}

/// Every route, with the body limit, security headers and request tracing.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/tokens", post(login::issue_token))
        .route("/tokens/current", delete(login::revoke_token))
        .route("/runs", get(runs::list).post(runs::start))
        .route("/runs/{run_id}", get(runs::detail))
        .route("/runs/{run_id}/log", get(runs::log))
        .route("/runs/{run_id}/events", get(runs::events))
        .route("/runs/{run_id}/cancel", post(runs::cancel))
        .route(
            "/runs/{run_id}/compare/{other_run_id}",
            get(routes::compare::compare),
        )
        .route("/runs/{run_id}/rerun", post(rerun::rerun))
        .route("/groups", get(groups::list).post(groups::start))
        .route("/groups/{group_id}", get(groups::detail))
        .route("/groups/{group_id}/junit", get(groups::junit))
        .route("/groups/{group_id}/cancel", post(groups::cancel))
        .route("/users", post(manage::register_user))
        .route("/users/{username}/disable", post(users::disable))
        .route("/users/{username}/password", put(users::change_password))
        .route("/users/{username}/tokens", delete(users::revoke_tokens))
        .route("/venvs", get(lab::venvs).post(manage::add_venv))
        .route("/venvs/{venv_id}", delete(manage::remove_venv))
        .route(
            "/machines",
            get(lab::machines).post(manage::register_machine),
        )
        .route(
            "/machines/{machine_id}",
            patch(manage::update_machine).delete(manage::retire_machine),
        )
        .route(
            "/test-cases",
            get(lab::test_cases).post(manage::define_test_case),
        )
        .route("/tests", get(routes::insights::list))
        .route("/tests/{test_id}", get(routes::insights::detail))
        .route(
            "/tests/{test_id}/quarantine",
            post(routes::insights::quarantine).delete(routes::insights::release),
        )
        .route(
            "/test-cases/{test_case_id}/trend",
            get(routes::insights::trend),
        )
        .route("/events/stream", get(live_changes))
        .route("/queue", get(lab::queue))
        .route("/me", get(lab::me))
        .route("/openapi.json", get(openapi::spec))
        .layer(axum::middleware::from_fn(csrf::require_json));
    let headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    let mut router = Router::new()
        .nest("/api/v1", api)
        .route("/", get(dashboard::index))
        .route("/assets/app.js", get(dashboard::script))
        .route("/assets/app.css", get(dashboard::styles))
        .route("/assets/docs.js", get(dashboard::docs_script))
        .route("/assets/insights.js", get(dashboard::insights_script))
        .route("/assets/groups.js", get(dashboard::groups_script))
        .route("/assets/uplot.js", get(dashboard::uplot_script))
        .route("/assets/uplot.css", get(dashboard::uplot_styles))
        .route("/api/docs", get(openapi::docs))
        .route("/metrics", get(metrics::render_with_lab))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
        .route_layer(axum::middleware::from_fn(metrics::track))
        .route_layer(axum::middleware::from_fn(spans::in_request_span))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `GET /api/v1/events/stream`: every run's and group's status changes, as Server-Sent Events
/// (`event: run` and `event: group`).
async fn live_changes(
    axum::extract::State(state): axum::extract::State<AppState>,
    _caller: auth::Caller,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    Ok(routes::live::run_changes(state).await?.into_response())
}

/// Serves `state` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    tracing::info!(addr = ?listener.local_addr().ok(), "gateway listening");
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(GatewayError::Serve)
}

/// Binds `settings.addr` and serves until `shutdown`.
pub async fn run(
    pool: PgPool,
    nats: async_nats::Client,
    names: BusNames,
    settings: GatewaySettings,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    let addr = settings.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Listen { addr, source })?;
    let state = AppState::new(pool, nats, names, settings, shutdown.clone()).await?;
    serve(listener, state, shutdown).await
}
