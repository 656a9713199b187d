//! "Why is my run waiting?": the queue in order, each run with the reason it waits now.
//!
//! The reason is worked out when asked, from the machines and venvs read models, so it follows
//! the lab as it changes (a machine retired after the run was queued shows as
//! `machine_retired`), while the reason the handler recorded at queue time is kept beside it.

use crate::error::ReadModelError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// A run waiting for a venv.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QueuedRun {
    /// The run.
    pub run_id: Uuid,
    /// 1 for the head of the queue.
    pub place: i64,
    /// Who asked for it.
    pub requested_by: String,
    /// What it runs.
    pub test_case_id: Uuid,
    /// The machine it asked for, if any.
    pub machine_id: Option<Uuid>,
    /// The venv it asked for, if any.
    pub venv_id: Option<Uuid>,
    /// The labels it asked for.
    pub labels: Vec<String>,
    /// When it was queued.
    pub queued_at: Option<DateTime<Utc>>,
    /// Why it waits now: `machine_retired` (the machine it needs is retired),
    /// `venv_unavailable` (the venv it asked for is broken or removed), `no_matching_machine`
    /// (no machine in service matches its machine, venv and labels) or `no_free_venv` (a
    /// machine matches, but none of its venvs is free).
    pub reason: String,
    /// The reason the handler recorded when it queued the run.
    pub queued_reason: Option<String>,
}

const QUEUE_SQL: &str = "
WITH q AS (
    SELECT q.*, v.machine_id AS venv_machine_id, v.status AS venv_status
    FROM rm_venvs.queue q
    LEFT JOIN rm_venvs.venvs v ON v.venv_id = q.venv_id
    WHERE q.ticket IS NOT NULL
)
SELECT q.run_id,
       row_number() OVER (ORDER BY q.ticket) AS place,
       q.requested_by, q.test_case_id, q.machine_id, q.venv_id, q.labels, q.queued_at,
       q.reason AS queued_reason,
       CASE
           WHEN EXISTS (SELECT 1 FROM rm_machines.machines m
                        WHERE m.retired
                          AND m.machine_id IN (q.machine_id, q.venv_machine_id))
               THEN 'machine_retired'
           WHEN q.venv_id IS NOT NULL AND q.venv_status IN ('broken', 'removed')
               THEN 'venv_unavailable'
           WHEN NOT EXISTS (SELECT 1 FROM rm_machines.machines m
                            WHERE NOT m.retired
                              AND (q.machine_id IS NULL OR m.machine_id = q.machine_id)
                              AND (q.venv_id IS NULL OR m.machine_id = q.venv_machine_id)
                              AND m.labels @> q.labels)
               THEN 'no_matching_machine'
           ELSE 'no_free_venv'
       END AS reason
FROM q
ORDER BY q.ticket
LIMIT $1";

/// The first `limit` queued runs, oldest first, each with the reason it waits.
pub async fn queue(pool: &PgPool, limit: i64) -> Result<Vec<QueuedRun>, ReadModelError> {
    Ok(sqlx::query_as(QUEUE_SQL)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}
