//! `/healthz` (the process answers) and `/readyz` (Postgres and NATS reachable, read models not
//! too far behind the log, no component of the process wedged).

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// `GET /healthz`: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "The process runs")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when Postgres answers, NATS is connected, the read models lag the log
/// by at most `max_ready_lag` events and no component of the process is wedged (`wedged` lists
/// them with the reason: an events stream holding another log's events, say); 503 otherwise,
/// saying which check failed.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, description = "Ready"), (status = 503, description = "Postgres, NATS or the read models are not ready, or a component is wedged")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let nats = matches!(
        state.nats.connection_state(),
        async_nats::connection::State::Connected
    );
    let (postgres, lag) = match runledger_readmodel::log_head(&state.pool).await {
        Ok(head) => (true, Some(head - state.freshness.position())),
        Err(err) => {
            tracing::warn!(error = %err, "readiness: Postgres unavailable");
            (false, None)
        }
    };
    let caught_up = lag.is_some_and(|lag| lag <= state.settings.max_ready_lag);
    let wedged: Vec<Value> = state
        .settings
        .wedges
        .all()
        .into_iter()
        .map(|(component, reason)| json!({"component": component, "reason": reason}))
        .collect();
    let ready = nats && postgres && caught_up && wedged.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"ready": ready, "postgres": postgres, "nats": nats,
                      "projection_lag": lag, "max_projection_lag": state.settings.max_ready_lag,
                      "log_id": state.log, "wedged": wedged});
    (status, Json(body))
}
