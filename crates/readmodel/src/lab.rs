//! The lab's inventory as callers list it: venvs, machines (never a secret: the read model holds
//! none), test cases, and how many venvs each machine has in each status.
//!
//! Each listing comes two ways: typed rows, for callers that format them (the CLI), and
//! documents as Postgres renders the rows to JSON, for the HTTP API, whose wire form (times
//! included) is Postgres's.

use crate::error::ReadModelError;
use crate::rows::{MachineRow, TestCaseRow, VenvRow, VenvStatus};
use serde_json::Value;
use sqlx::PgPool;

/// Every venv, by name.
pub async fn venvs(pool: &PgPool) -> Result<Vec<VenvRow>, ReadModelError> {
    Ok(
        sqlx::query_as("SELECT * FROM rm_venvs.venvs ORDER BY name, venv_id")
            .fetch_all(pool)
            .await?,
    )
}

/// Every machine, by name.
pub async fn machines(pool: &PgPool) -> Result<Vec<MachineRow>, ReadModelError> {
    Ok(
        sqlx::query_as("SELECT * FROM rm_machines.machines ORDER BY name, machine_id")
            .fetch_all(pool)
            .await?,
    )
}

/// Every test case, by name.
pub async fn test_cases(pool: &PgPool) -> Result<Vec<TestCaseRow>, ReadModelError> {
    Ok(
        sqlx::query_as("SELECT * FROM rm_test_cases.test_cases ORDER BY name, test_case_id")
            .fetch_all(pool)
            .await?,
    )
}

/// Every venv as the API shows it: `{venv_id, name, machine_id, status, run_id, path, python,
/// requirements, python_version, failure_reason, leases, added_at}`, by name.
pub async fn venv_documents(pool: &PgPool) -> Result<Vec<Value>, ReadModelError> {
    documents(
        pool,
        "SELECT jsonb_build_object('venv_id', venv_id, 'name', name, 'machine_id', machine_id, \
                'status', status, 'run_id', run_id, 'path', path, 'python', python, \
                'requirements', requirements, 'python_version', python_version, \
                'failure_reason', failure_reason, 'leases', leases, 'added_at', added_at) \
         FROM rm_venvs.venvs ORDER BY name, venv_id",
    )
    .await
}

/// Every machine as the API shows it (every column of [`MachineRow`]), by name.
pub async fn machine_documents(pool: &PgPool) -> Result<Vec<Value>, ReadModelError> {
    documents(
        pool,
        "SELECT to_jsonb(m) FROM rm_machines.machines m ORDER BY name, machine_id",
    )
    .await
}

/// Every test case as the API shows it (every column of [`TestCaseRow`]), by name.
pub async fn test_case_documents(pool: &PgPool) -> Result<Vec<Value>, ReadModelError> {
    documents(
        pool,
        "SELECT to_jsonb(t) FROM rm_test_cases.test_cases t ORDER BY name, test_case_id",
    )
    .await
}

async fn documents(pool: &PgPool, sql: &'static str) -> Result<Vec<Value>, ReadModelError> {
    Ok(sqlx::query_scalar(sql).fetch_all(pool).await?)
}

/// How many venvs one machine has in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenvCount {
    /// The machine's name (its id while the machines read model does not know it).
    pub machine: String,
    /// The status.
    pub status: VenvStatus,
    /// How many.
    pub count: i64,
}

/// The venvs per machine and status; pairs with no venv are absent.
pub async fn venv_counts(pool: &PgPool) -> Result<Vec<VenvCount>, ReadModelError> {
    let rows: Vec<(String, crate::decode::Word, i64)> = sqlx::query_as(
        "SELECT coalesce(m.name, v.machine_id::text), v.status, count(*) \
         FROM rm_venvs.venvs v LEFT JOIN rm_machines.machines m USING (machine_id) \
         GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(machine, status, count)| {
            Ok(VenvCount {
                machine,
                status: VenvStatus::try_from(status)?,
                count,
            })
        })
        .collect()
}
