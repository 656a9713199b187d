//! `GET /api/v1/openapi.json`, generated from the route handlers' `#[utoipa::path]` annotations
//! and the answer types below, and `GET /api/docs`, a page that lists it.

mod answers;
pub mod insights;
mod rules;

use crate::login;
use crate::routes::{
    compare, groups, health, insights as insight_routes, lab, manage, rerun, runs, users,
};
use answers::CommonAnswers;
use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

/// A run, as every run route answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// The run.
    pub run_id: Uuid,
    /// `queued`, `assigned`, `running`, `passed`, `failed`, `error`, `timed_out`, `cancelled`.
    pub status: String,
    /// Who asked for it.
    pub user: String,
    /// The machine it ran on.
    pub machine_id: Option<Uuid>,
    /// That machine's name.
    pub machine_name: Option<String>,
    /// Its test case.
    pub test_case_id: Uuid,
    /// The test case's name.
    pub test_case_name: Option<String>,
    /// The venv it leased.
    pub venv_id: Option<Uuid>,
    /// That venv's name.
    pub venv_name: Option<String>,
    /// When it was requested.
    pub queued_at: chrono::DateTime<chrono::Utc>,
    /// When its process started.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it ended.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// From start to end.
    pub duration_ms: Option<i64>,
    /// The process's exit code.
    pub exit_code: Option<i32>,
    /// `{passed, failed, skipped, errors}` from the JUnit report.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
    /// The attempt (retries count up).
    pub attempt: i32,
    /// Why it ended, in words.
    pub reason: Option<String>,
    /// The failure classification of an `error` (`ssh_unreachable`, `executor_lost`, ...).
    pub error_code: Option<String>,
    /// Cancellation was asked for.
    pub cancel_requested: bool,
    /// Labels the request asked for.
    pub labels: Vec<String>,
    /// The run group it is a member of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    /// Its index among the group's members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<i32>,
    /// For a run of a Jenkins job: the build it follows, once started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jenkins_build: Option<JenkinsBuildView>,
}

/// The Jenkins build a run follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct JenkinsBuildView {
    /// The build number.
    pub number: i64,
    /// The build's page.
    pub url: String,
}

/// A page of the run history.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// The runs.
    pub items: Vec<RunView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `{code, message}`.
    #[schema(value_type = Object)]
    pub error: serde_json::Value,
}

/// A command published for the caller and accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedBody {
    /// The command's id.
    pub command_id: Uuid,
    /// The log position of its last event: pass as `min_position` to later reads.
    pub position: i64,
}

/// An issued token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Its user.
    pub username: String,
    /// `admin` or `member`.
    pub role: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "runledger", description = "Test runs on remote machines, with their whole history."),
    paths(
        login::issue_token, login::revoke_token,
        runs::list, runs::detail, runs::log, runs::events, runs::start, runs::cancel,
        rerun::rerun,
        groups::start, groups::list, groups::detail, groups::junit, groups::cancel,
        lab::venvs, lab::machines, lab::test_cases, lab::queue, lab::me,
        manage::register_user, manage::register_machine, manage::update_machine,
        manage::retire_machine, manage::add_venv, manage::remove_venv, manage::define_test_case,
        users::disable, users::change_password, users::revoke_tokens,
        health::healthz, health::readyz,
        insight_routes::list, insight_routes::detail, insight_routes::trend,
        insight_routes::quarantine, insight_routes::release, compare::compare,
    ),
    components(schemas(RunView, RunPage, ErrorBody, AcceptedBody, TokenBody)),
    modifiers(&BearerAuth, &CommonAnswers),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The served document: the annotations' ([`ApiDoc`]) with the rules that span several fields
/// of a body ([`rules`]); built once.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        rules::add_cross_field_rules(&mut document);
        document
    })
}

/// `GET /api/v1/openapi.json`
pub async fn spec() -> impl IntoResponse {
    Json(document())
}

/// `GET /api/docs`: the routes of the spec, rendered by a few lines of script.
pub async fn docs() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("dashboard/docs.html"),
    )
}

#[cfg(test)]
mod tests;
