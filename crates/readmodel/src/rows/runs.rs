//! `rm_runs`: run history, each run's output, and the names runs are shown with.

use crate::model::Table;
use chrono::{DateTime, Utc};
use runledger_types::RunStatus;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tables of the `runs` read model.
pub const RUNS_TABLES: &[Table] = &[
    Table {
        name: "runs",
        columns: &[
            ("run_id", "uuid NOT NULL"),
            ("status", "text NOT NULL"),
            ("requested_by", "text NOT NULL"),
            ("test_case_id", "uuid NOT NULL"),
            ("test_case_name", "text"),
            ("machine_id", "uuid"),
            ("machine_name", "text"),
            ("venv_id", "uuid"),
            ("venv_name", "text"),
            ("requested_machine_id", "uuid"),
            ("requested_venv_id", "uuid"),
            ("labels", "text[] NOT NULL"),
            ("env", "jsonb NOT NULL"),
            ("attempt", "integer NOT NULL"),
            ("executor", "text"),
            ("cancel_requested", "boolean NOT NULL"),
            ("cancel_reason", "text"),
            ("queued_at", "timestamptz NOT NULL"),
            ("assigned_at", "timestamptz"),
            ("started_at", "timestamptz"),
            ("finished_at", "timestamptz"),
            ("duration_ms", "bigint"),
            ("exit_code", "integer"),
            ("summary", "jsonb"),
            ("reason", "text"),
            ("error_code", "text"),
            ("output_bytes", "bigint NOT NULL"),
            ("output_chunks", "bigint NOT NULL"),
            ("last_position", "bigint NOT NULL"),
            ("updated_at", "timestamptz NOT NULL"),
            ("jenkins_build_number", "bigint"),
            ("jenkins_build_url", "text"),
            ("group_id", "uuid"),
            ("shard", "integer"),
        ],
        key: &["run_id"],
        // History queries: newest first by default, filtered by one of these, keyset-paged on
        // (sort column, run_id).
        indexes: &[
            "queued_at, run_id",
            "started_at, run_id",
            "finished_at, run_id",
            "duration_ms, run_id",
            "status, queued_at, run_id",
            "status, started_at, run_id",
            "requested_by, queued_at, run_id",
            "machine_id, queued_at, run_id",
            "test_case_id, queued_at, run_id",
            "group_id, shard",
        ],
        deferred_key: false,
        contents: None,
    },
    Table {
        name: "run_output",
        columns: &[
            ("run_id", "uuid NOT NULL"),
            ("seq", "bigint NOT NULL"),
            ("stream", "text NOT NULL"),
            ("byte_offset", "bigint NOT NULL"),
            ("bytes", "bigint NOT NULL"),
            ("position", "bigint NOT NULL"),
            ("recorded_at", "timestamptz NOT NULL"),
        ],
        key: &["run_id", "seq"],
        indexes: &[],
        deferred_key: true,
        contents: None,
    },
    Table {
        name: "names",
        columns: &[
            ("kind", "text NOT NULL"),
            ("id", "uuid NOT NULL"),
            ("name", "text NOT NULL"),
        ],
        key: &["kind", "id"],
        indexes: &[],
        deferred_key: false,
        contents: None,
    },
];

/// One run, with every field of the contract's run answer and what the history queries filter
/// and sort on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct RunRow {
    pub run_id: Uuid,
    /// `queued`, `assigned`, `running`, or a final status.
    #[sqlx(try_from = "crate::decode::Word")]
    pub status: RunStatus,
    /// The actor who asked for the run (the contract's `user`).
    pub requested_by: String,
    pub test_case_id: Uuid,
    /// The test case's name when the run was requested.
    pub test_case_name: Option<String>,
    pub machine_id: Option<Uuid>,
    /// The machine's name when the run was assigned.
    pub machine_name: Option<String>,
    pub venv_id: Option<Uuid>,
    pub venv_name: Option<String>,
    /// The machine the request named, if any.
    pub requested_machine_id: Option<Uuid>,
    /// The venv the request named, if any.
    pub requested_venv_id: Option<Uuid>,
    /// Labels the request asked for.
    pub labels: Vec<String>,
    /// Environment overrides of the request.
    pub env: serde_json::Value,
    /// The attempt of the latest assignment (0 before the first).
    pub attempt: i32,
    pub executor: Option<String>,
    pub cancel_requested: bool,
    pub cancel_reason: Option<String>,
    /// When the run was requested (it waits from then on).
    pub queued_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// From start to finish; absent when the run never started.
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    /// `{passed, failed, skipped, errors}` from the JUnit report.
    pub summary: Option<serde_json::Value>,
    /// Why it ended, in words.
    pub reason: Option<String>,
    pub error_code: Option<String>,
    /// Bytes of output so far: the offset of the next chunk.
    pub output_bytes: i64,
    pub output_chunks: i64,
    /// The position of the last event that changed this row.
    pub last_position: i64,
    /// `recorded_at` of that event.
    pub updated_at: DateTime<Utc>,
    /// The Jenkins build a run of a Jenkins job follows, once it started.
    pub jenkins_build_number: Option<i64>,
    /// That build's URL.
    pub jenkins_build_url: Option<String>,
    /// The group it is a member of.
    pub group_id: Option<Uuid>,
    /// Its index among the group's members.
    pub shard: Option<i32>,
}

/// Where a chunk of a run's output is: its `run_output` event's `position` in the log, and
/// where it starts (`byte_offset`) and how long it is (`bytes`) in the run's whole output, so a
/// reader can resume from any offset. The text itself stays in the log, never copied: output is
/// most of a log's bytes, and copying it doubled the cost of projecting (see
/// docs/benchmarks.md); [`crate::run_output`] reads it through this index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct OutputRow {
    pub run_id: Uuid,
    pub seq: i64,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub byte_offset: i64,
    pub bytes: i64,
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
}

/// What a name in [`NameRow`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum NameKind {
    Machine,
    TestCase,
    Venv,
}

/// The current name of a machine, test case or venv: runs are stamped with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct NameRow {
    pub kind: NameKind,
    pub id: Uuid,
    pub name: String,
}
