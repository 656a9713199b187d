//! The HTTP routes, one module per resource, and what they share: parameter parsing and sending
//! a command for the caller.

pub mod bodies;
pub mod compare;
pub mod groups;
pub mod health;
pub mod insights;
pub mod lab;
pub mod live;
pub mod manage;
pub mod rerun;
pub mod runs;
pub mod users;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use runledger_types::CommandId;
use runledger_types::command::CommandPayload;
use std::str::FromStr;
use uuid::Uuid;

/// `raw` as a uuid, or 400 naming `name`.
pub fn parse_uuid(raw: &str, name: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("{name}: {raw:?} is not a uuid")))
}

/// The path's one segment as a uuid, or 400 naming `name`.
pub fn path_uuid(
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    name: &str,
) -> Result<Uuid, ApiError> {
    let axum::extract::Path(raw) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    parse_uuid(&raw, name)
}

/// Query parameters as `T` (unknown ones refused where `T` says so), or 400 saying why.
pub fn query<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|axum::extract::Query(value)| value)
        .map_err(|err| ApiError::bad_request(err.body_text()))
}

/// An optional parameter parsed as `T`, or 400 naming it.
pub fn parse_opt<T: FromStr>(raw: Option<&str>, name: &str) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    raw.map(|raw| {
        raw.parse()
            .map_err(|err| ApiError::bad_request(format!("{name}: {raw:?}: {err}")))
    })
    .transpose()
}

/// A page's `limit`: [`runs::DEFAULT_LIMIT`] when absent, else 1–[`runs::MAX_LIMIT`] or 400.
pub fn page_limit(raw: Option<i64>) -> Result<i64, ApiError> {
    let limit = raw.unwrap_or(runs::DEFAULT_LIMIT);
    if (1..=runs::MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(format!(
            "limit: {limit} is out of range 1..={}",
            runs::MAX_LIMIT
        )))
    }
}

/// An accepted command: its id and the position of its last event (for `min_position`).
pub struct Accepted {
    /// The command id.
    pub command_id: CommandId,
    /// The log position of its last event (0 when it changed nothing).
    pub position: i64,
}

/// Publishes `command` as the caller and waits for the outcome; a rejection becomes the
/// matching 4xx.
pub async fn send<C: CommandPayload>(
    state: &AppState,
    caller: &Caller,
    command: &C,
) -> Result<Accepted, ApiError> {
    let command_id = CommandId::new();
    // The request's span (crate::spans) ties the answer to the handler's trace of the command.
    tracing::Span::current().record("command_id", tracing::field::display(command_id));
    let outcome = state
        .commands
        .send(command_id, &caller.username, command)
        .await
        .map_err(ApiError::unavailable)?;
    if !outcome.accepted {
        let rejection = outcome.error.unwrap_or_else(|| {
            runledger_types::Rejection::new(
                runledger_types::RejectionCode::InvalidPayload,
                "rejected without a reason".to_owned(),
            )
        });
        return Err(ApiError::rejected(rejection));
    }
    let position = outcome
        .events
        .iter()
        .map(|event| event.position)
        .max()
        .unwrap_or(0);
    Ok(Accepted {
        command_id,
        position,
    })
}
