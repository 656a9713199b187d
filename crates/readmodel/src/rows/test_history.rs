//! `rm_tests`: every result of every test, and per test what the insights pages show (pass
//! rate, last status and change, durations, flakiness). docs/insights.md describes the figures.

use crate::model::Table;
use chrono::{DateTime, Utc};
use runledger_types::command::TestOutcome;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tables of the `tests` read model.
pub const TESTS_TABLES: &[Table] = &[
    Table {
        name: "tests",
        columns: &[
            ("test_id", "uuid NOT NULL"),
            ("test_case_id", "uuid NOT NULL"),
            ("classname", "text NOT NULL"),
            ("name", "text NOT NULL"),
            ("runs", "bigint NOT NULL"),
            ("passed", "bigint NOT NULL"),
            ("failed", "bigint NOT NULL"),
            ("errors", "bigint NOT NULL"),
            ("skipped", "bigint NOT NULL"),
            ("pass_rate", "double precision"),
            ("fail_rate", "double precision NOT NULL"),
            ("last_status", "text NOT NULL"),
            ("last_run_id", "uuid NOT NULL"),
            ("last_run_at", "timestamptz NOT NULL"),
            ("last_changed_at", "timestamptz NOT NULL"),
            ("first_seen_at", "timestamptz NOT NULL"),
            ("last_failure_at", "timestamptz"),
            ("last_failure_run_id", "uuid"),
            ("last_failure_message", "text"),
            ("duration_p50_ms", "bigint"),
            ("duration_p90_ms", "bigint"),
            ("flaky", "boolean NOT NULL"),
            ("flaky_score", "double precision NOT NULL"),
            ("flips", "jsonb NOT NULL"),
            ("recent", "jsonb NOT NULL"),
            ("last_position", "bigint NOT NULL"),
        ],
        key: &["test_id"],
        // The list's sorts, keyset-paged on (sort column, test_id), and its test case filter.
        indexes: &[
            "test_case_id, name, test_id",
            "fail_rate, test_id",
            "flaky_score, test_id",
            "(coalesce(duration_p90_ms, -1)), test_id",
            "name, test_id",
            "last_run_at, test_id",
        ],
        deferred_key: false,
    },
    Table {
        name: "results",
        columns: &[
            ("position", "bigint NOT NULL"),
            ("ordinal", "integer NOT NULL"),
            ("test_id", "uuid NOT NULL"),
            ("run_id", "uuid NOT NULL"),
            ("attempt", "integer NOT NULL"),
            ("status", "text NOT NULL"),
            ("duration_ms", "bigint NOT NULL"),
            ("message", "text"),
            ("machine_id", "uuid"),
            ("venv_id", "uuid"),
            ("finished_at", "timestamptz NOT NULL"),
        ],
        // The key is a test's history, newest first (one index less to build than a key of
        // its own); the index, a run's results.
        key: &["test_id", "position", "ordinal"],
        indexes: &["run_id"],
        deferred_key: true,
    },
    Table {
        name: "test_runs",
        columns: &[
            ("run_id", "uuid NOT NULL"),
            ("test_case_id", "uuid NOT NULL"),
            ("env", "jsonb NOT NULL"),
            ("attempt", "integer NOT NULL"),
            ("machine_id", "uuid"),
            ("venv_id", "uuid"),
            ("os", "text"),
            ("rerun_of", "uuid"),
        ],
        key: &["run_id"],
        indexes: &[],
        deferred_key: false,
    },
    Table {
        name: "quarantines",
        columns: &[
            ("test_id", "uuid NOT NULL"),
            ("test_case_id", "uuid"),
            ("reason", "text NOT NULL"),
            ("until", "timestamptz"),
            ("by", "text NOT NULL"),
            ("since", "timestamptz NOT NULL"),
            ("position", "bigint NOT NULL"),
        ],
        key: &["test_id"],
        indexes: &[],
        deferred_key: false,
    },
    Table {
        name: "machines",
        columns: &[
            ("machine_id", "uuid NOT NULL"),
            ("name", "text NOT NULL"),
            ("os", "text NOT NULL"),
        ],
        key: &["machine_id"],
        indexes: &[],
        deferred_key: false,
    },
];

/// What one test's insight figures are, as of its last result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct TestRow {
    /// `uuid_v5` of the test case, classname and name (runledger-insights).
    pub test_id: Uuid,
    pub test_case_id: Uuid,
    pub classname: String,
    pub name: String,
    /// Results recorded, attempts included.
    pub runs: i64,
    pub passed: i64,
    pub failed: i64,
    pub errors: i64,
    pub skipped: i64,
    /// `passed / (passed + failed + errors)`; absent while every result was skipped.
    pub pass_rate: Option<f64>,
    /// `(failed + errors) / runs`: what `-fail_rate` sorts on.
    pub fail_rate: f64,
    /// `passed`, `failed`, `error` or `skipped`.
    pub last_status: String,
    pub last_run_id: Uuid,
    pub last_run_at: DateTime<Utc>,
    /// When the last status became what it is.
    pub last_changed_at: DateTime<Utc>,
    pub first_seen_at: DateTime<Utc>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_failure_run_id: Option<Uuid>,
    pub last_failure_message: Option<String>,
    /// Over the last [`DURATION_WINDOW`] results that were not skipped.
    pub duration_p50_ms: Option<i64>,
    pub duration_p90_ms: Option<i64>,
    /// Flipped under the same inputs within the flaky window (docs/insights.md).
    pub flaky: bool,
    /// Flips over comparisons within the window, 0 to 1.
    pub flaky_score: f64,
    /// The evidence: `[{from_run, from_attempt, to_run, to_attempt, fixed, same_run}]`.
    pub flips: serde_json::Value,
    /// The last [`RECENT`] results, oldest first ([`RecentResult`]), from which the figures
    /// above are computed.
    #[sqlx(json)]
    pub recent: Vec<RecentResult>,
    /// The position of the last result.
    pub last_position: i64,
}

/// How many results each test keeps in [`TestRow::recent`].
pub const RECENT: usize = 50;
/// How many of the recent results the duration percentiles are taken over.
pub const DURATION_WINDOW: usize = 50;
/// The default flaky window: the last 30 results.
pub const FLAKY_WINDOW: usize = 30;

/// One of a test's recent results, as [`TestRow::recent`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentResult {
    /// The run.
    pub run_id: Uuid,
    /// Its attempt.
    pub attempt: u32,
    /// The run it reran, if it is a rerun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<Uuid>,
    /// How it ended.
    pub status: TestOutcome,
    /// Milliseconds.
    pub duration_ms: u64,
    /// What "the same inputs" compares: the machine's OS and the run's env (see
    /// docs/insights.md).
    pub inputs: String,
}

/// One result of one test in one attempt of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct ResultRow {
    /// The log position of the event that reported it.
    pub position: i64,
    /// Its index in that event's list.
    pub ordinal: i32,
    pub test_id: Uuid,
    pub run_id: Uuid,
    pub attempt: i32,
    pub status: String,
    pub duration_ms: i64,
    pub message: Option<String>,
    pub machine_id: Option<Uuid>,
    pub venv_id: Option<Uuid>,
    /// When the result was recorded.
    pub finished_at: DateTime<Utc>,
}

/// What the tests read model needs of a run to place its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TestRunRow {
    pub run_id: Uuid,
    pub test_case_id: Uuid,
    /// The run's env overrides.
    pub env: serde_json::Value,
    /// The current attempt (0 before the first assignment).
    pub attempt: i32,
    pub machine_id: Option<Uuid>,
    pub venv_id: Option<Uuid>,
    /// The assigned machine's OS (`linux`, `windows`).
    pub os: Option<String>,
    /// The run it reruns (`start_run`'s `rerun_of`): its results flipping from that run's
    /// count as flips within one run.
    #[serde(default)]
    pub rerun_of: Option<Uuid>,
}

/// A machine's name and OS, as the tests read model stamps results with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TestMachineRow {
    pub machine_id: Uuid,
    pub name: String,
    pub os: String,
}

/// A test's quarantine while it lasts (released or lapsed, the row goes; the log keeps its
/// story): its failures do not fail runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct QuarantineRow {
    pub test_id: Uuid,
    /// The test case, when the quarantine named it.
    pub test_case_id: Option<Uuid>,
    pub reason: String,
    /// When it ends by itself; `None`: when released.
    pub until: Option<DateTime<Utc>>,
    /// Who quarantined it.
    pub by: String,
    /// When.
    pub since: DateTime<Utc>,
    /// The `test_quarantined` event's position.
    pub position: i64,
}
