//! `rm_groups`: one row per run group, its plan as `group_started` recorded it, its verdict and
//! timings. Its members are runs, shown from `rm_runs` (whose rows carry `group_id` and
//! `shard`), so the group's page and the run history never disagree about a member.

use crate::model::Table;
use chrono::{DateTime, Utc};
use runledger_types::GroupStatus;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tables of the `groups` read model.
pub const GROUPS_TABLES: &[Table] = &[Table {
    name: "groups",
    columns: &[
        ("group_id", "uuid NOT NULL"),
        ("status", "text NOT NULL"),
        ("kind", "text NOT NULL"),
        ("requested_by", "text NOT NULL"),
        ("test_case_id", "uuid NOT NULL"),
        ("machine_id", "uuid"),
        ("labels", "text[] NOT NULL"),
        ("env", "jsonb NOT NULL"),
        ("members", "integer NOT NULL"),
        ("plan", "jsonb COMPRESSION lz4 NOT NULL"),
        ("unknown_tests", "integer NOT NULL"),
        ("ideal_ms", "bigint"),
        ("predicted_ms", "bigint"),
        ("started_at", "timestamptz NOT NULL"),
        ("finished_at", "timestamptz"),
        ("duration_ms", "bigint"),
        ("summary", "jsonb"),
        ("cancel_requested", "boolean NOT NULL"),
        ("cancel_reason", "text"),
        ("last_position", "bigint NOT NULL"),
        ("updated_at", "timestamptz NOT NULL"),
    ],
    key: &["group_id"],
    // Newest first by default, filtered by one of these, keyset-paged on (started_at, group_id).
    indexes: &[
        "started_at, group_id",
        "status, started_at, group_id",
        "requested_by, started_at, group_id",
        "test_case_id, started_at, group_id",
    ],
    deferred_key: false,
    contents: None,
}];

/// One run group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct GroupRow {
    pub group_id: Uuid,
    /// `running`, then its verdict.
    #[sqlx(try_from = "crate::decode::Word")]
    pub status: GroupStatus,
    /// `shards` or `matrix`.
    pub kind: String,
    /// The actor who asked for it.
    pub requested_by: String,
    pub test_case_id: Uuid,
    /// The machine every member was restricted to, if any.
    pub machine_id: Option<Uuid>,
    /// Labels every member asked for.
    pub labels: Vec<String>,
    /// Environment overrides of every member.
    pub env: serde_json::Value,
    /// How many member runs it has.
    pub members: i32,
    /// Its members as `group_started` planned them: `shard`, `run_id`, `tests`, `predicted_ms`,
    /// `combination`.
    pub plan: serde_json::Value,
    /// Shards: tests the split had no duration for.
    pub unknown_tests: i32,
    /// Shards: `max(total / shards, longest)` of the known durations.
    pub ideal_ms: Option<i64>,
    /// Shards: the longest member's predicted time.
    pub predicted_ms: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Its wall time, from `group_started` to `group_finished`.
    pub duration_ms: Option<i64>,
    /// The members' summaries added up, once it finished.
    pub summary: Option<serde_json::Value>,
    pub cancel_requested: bool,
    pub cancel_reason: Option<String>,
    /// The position of the last event that changed this row.
    pub last_position: i64,
    /// `recorded_at` of that event.
    pub updated_at: DateTime<Utc>,
}
