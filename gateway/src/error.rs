//! Every error answer: a status and `{"error": {"code": "...", "message": "..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runledger_types::{Rejection, RejectionCode};
use serde_json::json;

/// An HTTP error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: String,
    /// For people.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A body that could not be read as JSON: 413 `payload_too_large` over the body limit, 415
    /// `unsupported_media_type` without a JSON content type, else 400 `bad_request`; with axum's
    /// reason.
    pub fn bad_body(rejection: &axum::extract::rejection::JsonRejection) -> Self {
        let (status, code) = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            _ => (StatusCode::BAD_REQUEST, "bad_request"),
        };
        Self::new(status, code, rejection.body_text())
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `beyond_log_head`: `min_position` names a position the log has not reached.
    pub fn beyond_log_head(position: i64, head: i64) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "beyond_log_head",
            format!(
                "min_position {position} is beyond the log's head ({head}): no command was answered with it"
            ),
        )
    }

    /// 500 `internal`, logged; the caller sees no detail.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed; see the gateway's log",
        )
    }

    /// 503 `unavailable`: a dependency (NATS, the handler) did not answer.
    pub fn unavailable(err: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %err, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            err.to_string(),
        )
    }

    /// A command's rejection, with the status that fits its code.
    pub fn rejected(rejection: Rejection) -> Self {
        use RejectionCode as C;
        let status = match rejection.code {
            C::Forbidden => StatusCode::FORBIDDEN,
            C::UnknownMachine
            | C::UnknownVenv
            | C::UnknownTestCase
            | C::UnknownRun
            | C::UnknownTest
            | C::UnknownGroup
            | C::UnknownUser => StatusCode::NOT_FOUND,
            C::UserExists
            | C::MachineExists
            | C::VenvExists
            | C::TestCaseExists
            | C::RunExists
            | C::VenvNameTaken
            | C::RunFinished
            | C::CancelAlreadyRequested
            | C::VenvInUse
            | C::UserDisabled
            | C::MachineRetired
            | C::VenvRemoved
            | C::VenvBroken
            | C::VenvNotProvisioning
            | C::RunNotAssigned
            | C::RunNotRunning
            | C::ExecutorMismatch
            | C::HostKeyMismatch
            | C::JenkinsBuildRecorded
            | C::NotAJenkinsRun
            | C::EnvNotOverridable
            | C::VenvMachineMismatch
            | C::NotQuarantined
            | C::QuarantineNotLapsed
            | C::RunNotFinished
            | C::NothingToRerun
            | C::RerunTestCaseMismatch
            | C::GroupExists
            | C::GroupFinished
            | C::GroupMemberExists
            | C::NoTestHistory
            | C::NotAGroupTestCase => StatusCode::CONFLICT,
            C::TooManyQueuedRuns => StatusCode::TOO_MANY_REQUESTS,
            C::MalformedJson | C::InvalidEnvelope | C::TypeMismatch | C::UnknownCommandType => {
                StatusCode::BAD_REQUEST
            }
            C::StorageError => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, rejection.code.as_str(), rejection.message)
    }
}

impl From<runledger_readmodel::ReadModelError> for ApiError {
    fn from(err: runledger_readmodel::ReadModelError) -> Self {
        use runledger_readmodel::ReadModelError as E;
        if err.is_missing_table() {
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "read_models_unavailable",
                "the read models are not built yet: is a projector running?",
            );
        }
        match err {
            E::NotFresh { .. } => Self::unavailable(err),
            E::History(err) => Self::bad_request(err.to_string()),
            E::Tests(err) => Self::bad_request(err.to_string()),
            E::Groups(err) => Self::bad_request(err.to_string()),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}
