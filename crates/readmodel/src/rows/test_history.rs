//! `rm_tests`: every result of every test, and per test what the insights pages show (pass
//! rate, last status and change, durations, flakiness). docs/insights.md describes the figures.

use crate::model::Table;
use chrono::{DateTime, Utc};
use runledger_insights::Flip;
use runledger_types::command::TestOutcome;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tables of the `tests` read model.
pub const TESTS_TABLES: &[Table] = &[
    Table {
        name: "tests",
        columns: &[
            ("test_id", "uuid NOT NULL"),
            ("number", "integer NOT NULL"),
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
            ("flips", "jsonb COMPRESSION lz4 NOT NULL"),
            // `json`, not `jsonb`: only ever read whole, and taken several times faster.
            ("recent", "json COMPRESSION lz4 NOT NULL"),
            ("last_position", "bigint NOT NULL"),
        ],
        key: &["test_id"],
        // The list's sorts, keyset-paged on (sort column, test_id), and its test case filter.
        indexes: &[
            "test_case_id, name, test_id",
            // A report's results name their tests by number.
            "number",
            "fail_rate, test_id",
            "flaky_score, test_id",
            "(coalesce(duration_p90_ms, -1)), test_id",
            "name, test_id",
            "last_run_at, test_id",
        ],
        deferred_key: false,
        contents: None,
    },
    Table {
        name: "history",
        columns: &[
            ("test_id", "uuid NOT NULL"),
            ("from_position", "bigint NOT NULL"),
            ("from_ordinal", "integer NOT NULL"),
            ("positions", "bigint[] COMPRESSION lz4 NOT NULL"),
            ("ordinals", "integer[] COMPRESSION lz4 NOT NULL"),
            ("statuses", "text[] COMPRESSION lz4 NOT NULL"),
            ("durations", "bigint[] COMPRESSION lz4 NOT NULL"),
            ("messages", "text[] COMPRESSION lz4 NOT NULL"),
        ],
        // A test's history, newest chunk first: chunks of one test never overlap.
        key: &["test_id", "from_position", "from_ordinal"],
        indexes: &[],
        deferred_key: true,
        // Live batches cut chunks where they end; a rebuild, where a chunk is full.
        contents: Some(
            "SELECT c.test_id, u.position, u.ordinal, u.status, u.duration_ms, u.message \
             FROM {schema}.history c, \
             unnest(c.positions, c.ordinals, c.statuses, c.durations, c.messages) \
               AS u(position, ordinal, status, duration_ms, message)",
        ),
    },
    Table {
        name: "reports",
        columns: &[
            ("position", "bigint NOT NULL"),
            ("run_id", "uuid NOT NULL"),
            ("attempt", "integer NOT NULL"),
            ("machine_id", "uuid"),
            ("venv_id", "uuid"),
            ("finished_at", "timestamptz NOT NULL"),
            ("tests", "integer[] COMPRESSION lz4 NOT NULL"),
            ("statuses", "text[] COMPRESSION lz4 NOT NULL"),
            ("durations", "bigint[] COMPRESSION lz4 NOT NULL"),
        ],
        // A history entry's context by position; a run's results by run.
        key: &["position"],
        indexes: &["run_id"],
        deferred_key: true,
        contents: None,
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
        contents: None,
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
        contents: None,
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
        contents: None,
    },
];

/// What one test's insight figures are, as of its last result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct TestRow {
    /// `uuid_v5` of the test case, classname and name (runledger-insights).
    pub test_id: Uuid,
    /// The test's number in the order tests were first seen in the log (1, 2, …): how a report
    /// names it.
    pub number: i32,
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
    /// The evidence over the default window ([`FLAKY_WINDOW`]), so a test's page need not
    /// compute it.
    #[sqlx(json)]
    pub flips: Vec<Flip>,
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
    /// A UUID v5 of the two, so the fold copies 16 bytes per result rather than a string.
    pub inputs: Uuid,
}

/// Up to [`CHUNK`] consecutive results of one test, newest first, as `rm_tests.history` keeps
/// them: a rebuild writes a row per chunk, not a row per result (docs/projections.md). Each
/// result's run, attempt, machine and time are those of its report ([`ReportRow`], by
/// position).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct HistoryChunk {
    pub test_id: Uuid,
    /// The oldest result's position and ordinal: the chunk's key.
    pub from_position: i64,
    pub from_ordinal: i32,
    /// The log position of the event that reported each result, newest first.
    pub positions: Vec<i64>,
    /// Each result's index in that event's list.
    pub ordinals: Vec<i32>,
    pub statuses: Vec<TestOutcome>,
    pub durations: Vec<i64>,
    pub messages: Vec<Option<String>>,
}

/// The most results one [`HistoryChunk`] holds: a page of history reads one or two chunks.
pub const CHUNK: usize = 64;

/// One event that reported test results: the context of each result in it (run, attempt,
/// machine, venv, time) and the results by test, for a run's comparison.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct ReportRow {
    pub position: i64,
    pub run_id: Uuid,
    pub attempt: i32,
    pub machine_id: Option<Uuid>,
    pub venv_id: Option<Uuid>,
    /// When the results were recorded.
    pub finished_at: DateTime<Utc>,
    /// Each result's test by its number ([`TestRow::number`]), in the event's order (a
    /// result's ordinal is its index here): numbers, not ids, as a rebuild writes a million.
    pub tests: Vec<i32>,
    pub statuses: Vec<TestOutcome>,
    pub durations: Vec<i64>,
}

/// A test outcome's wire name, without going through serde: the read model stores it as text.
pub fn outcome_name(outcome: TestOutcome) -> &'static str {
    match outcome {
        TestOutcome::Passed => "passed",
        TestOutcome::Failed => "failed",
        TestOutcome::Skipped => "skipped",
        TestOutcome::Error => "error",
    }
}

/// The outcome a stored status names, if it names one.
pub fn outcome_named(name: &str) -> Option<TestOutcome> {
    match name {
        "passed" => Some(TestOutcome::Passed),
        "failed" => Some(TestOutcome::Failed),
        "skipped" => Some(TestOutcome::Skipped),
        "error" => Some(TestOutcome::Error),
        _ => None,
    }
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
