//! `GET /api/v1/runs/{run_id}/compare/{other_run_id}`: what changed between two runs, test by
//! test (each run by its last attempt's per-test results).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::openapi::insights::{ComparisonView, DurationChangeView, TestRef};
use crate::routes::{parse_uuid, query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use runledger_insights::TestId;
use runledger_readmodel::test_insights::{MissingRun, RunComparison, compare_runs};
use serde::Deserialize;
use std::collections::HashMap;

/// Query parameters of the comparison.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    min_position: Option<i64>,
}

/// `GET /api/v1/runs/{run_id}/compare/{other_run_id}`: tests newly failing, fixed, still
/// failing, added and removed from the first run to the second, and the biggest duration
/// changes.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/compare/{other_run_id}", tag = "tests",
    params(("run_id" = uuid::Uuid, Path, description = "The earlier run"),
           ("other_run_id" = uuid::Uuid, Path, description = "The later run"),
           ("min_position" = Option<i64>, Query)),
    responses((status = 200, description = "The comparison", body = ComparisonView),
              (status = 404, description = "No such run", body = crate::openapi::ErrorBody),
              (status = 400, description = "Bad parameter", body = crate::openapi::ErrorBody),
              (status = 401, description = "No valid token", body = crate::openapi::ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    _caller: Caller,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    params: Result<Query<CompareParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ComparisonView>, ApiError> {
    let Path((a, b)) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    let (a, b) = (parse_uuid(&a, "run_id")?, parse_uuid(&b, "other_run_id")?);
    state.fresh(query(params)?.min_position).await?;
    let compared = compare_runs(&state.pool, a, b).await?.map_err(|missing| {
        let run = if missing == MissingRun::A { a } else { b };
        ApiError::not_found(format!("no run {run}"))
    })?;
    Ok(Json(view(a, b, compared)))
}

fn view(a: uuid::Uuid, b: uuid::Uuid, compared: RunComparison) -> ComparisonView {
    let RunComparison {
        comparison,
        names,
        attempt_a,
        attempt_b,
    } = compared;
    let refs = |ids: Vec<TestId>| ids.into_iter().map(|id| test_ref(id, &names)).collect();
    ComparisonView {
        run_id: a,
        other_run_id: b,
        attempt: attempt_a,
        other_attempt: attempt_b,
        duration_changes: comparison
            .duration_changes
            .into_iter()
            .map(|change| DurationChangeView {
                test: test_ref(change.test_id, &names),
                before_ms: change.before_ms,
                after_ms: change.after_ms,
                change_ms: change.change_ms,
                relative: change.relative,
            })
            .collect(),
        newly_failing: refs(comparison.newly_failing),
        fixed: refs(comparison.fixed),
        still_failing: refs(comparison.still_failing),
        added: refs(comparison.added),
        removed: refs(comparison.removed),
    }
}

fn test_ref(test_id: TestId, names: &HashMap<TestId, (String, String)>) -> TestRef {
    let (classname, name) = names.get(&test_id).cloned().unwrap_or_default();
    TestRef {
        test_id: test_id.0,
        classname,
        name,
    }
}
