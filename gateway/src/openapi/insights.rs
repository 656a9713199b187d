//! The answers of the insight routes (`/api/v1/tests`, a test case's trend).

use chrono::{DateTime, Utc};
use runledger_readmodel::test_insights::TrendPoint;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A test, as the tests list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestView {
    /// `uuid_v5` of the test case, classname and name (docs/insights.md).
    pub test_id: Uuid,
    /// The test case whose runs report it.
    pub test_case_id: Uuid,
    /// Its class or module (may be empty).
    pub classname: String,
    /// Its name.
    pub name: String,
    /// Results recorded, attempts included.
    pub runs: i64,
    /// `passed / (passed + failed + errors)`; null while every result was skipped.
    pub pass_rate: Option<f64>,
    /// `(failed + errors) / runs`.
    pub fail_rate: f64,
    /// `passed`, `failed`, `error` or `skipped`.
    pub last_status: String,
    /// When it last ran.
    pub last_run_at: DateTime<Utc>,
    /// It flipped under the same inputs within the flaky window.
    pub flaky: bool,
    /// Flips over comparisons in the window, 0 to 1.
    pub flaky_score: f64,
    /// Median duration of the last 50 results that ran.
    pub duration_p50_ms: Option<i64>,
    /// 90th percentile of the same.
    pub duration_p90_ms: Option<i64>,
    /// Quarantined: its failures are shown but do not fail runs.
    pub quarantined: bool,
}

/// A page of tests.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestPage {
    /// The tests.
    pub items: Vec<TestView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One result in a test's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// The run.
    pub run_id: Uuid,
    /// Its attempt.
    pub attempt: i32,
    /// `passed`, `failed`, `error` or `skipped`.
    pub status: String,
    /// Milliseconds.
    pub duration_ms: i64,
    /// The failure or error message.
    pub message: Option<String>,
    /// The machine it ran on.
    pub machine_id: Option<Uuid>,
    /// That machine's name.
    pub machine_name: Option<String>,
    /// When the result was recorded.
    pub finished_at: DateTime<Utc>,
}

/// One flip: a result that differs from the one before it under the same inputs, or a retry
/// or rerun that passed after the run failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlipView {
    /// The earlier result's run.
    pub from_run: Uuid,
    /// Its attempt.
    pub from_attempt: u32,
    /// The later result's run.
    pub to_run: Uuid,
    /// Its attempt.
    pub to_attempt: u32,
    /// From failing to passing (else passing to failing).
    pub fixed: bool,
    /// Within one run: a retry (or a rerun of it) passed after it failed.
    pub same_run: bool,
}

/// A test's flakiness over a window, and the evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlakinessView {
    /// The window, in results.
    pub window: usize,
    /// It flipped within the window.
    pub flaky: bool,
    /// Flips over comparisons, 0 to 1.
    pub score: f64,
    /// Where it flipped.
    pub flips: Vec<FlipView>,
}

/// One test: the list's figures, when things happened, a page of history and the flake
/// evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDetailView {
    /// The figures.
    #[serde(flatten)]
    pub test: TestView,
    /// Its first result.
    pub first_seen_at: DateTime<Utc>,
    /// When its last status became what it is.
    pub last_changed_at: DateTime<Utc>,
    /// Its last failure or error.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// That failure's run.
    pub last_failure_run_id: Option<Uuid>,
    /// That failure's message.
    pub last_failure_message: Option<String>,
    /// Results, newest first.
    pub history: Vec<HistoryView>,
    /// Pass as `cursor` for the next page of history; null on the last.
    pub next_cursor: Option<String>,
    /// Flakiness over the window asked for.
    pub flakiness: FlakinessView,
    /// Its quarantine, while one is in force.
    pub quarantine: Option<QuarantineView>,
}

/// A quarantine in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineView {
    /// Why.
    pub reason: String,
    /// When it ends by itself; null: when released.
    pub until: Option<DateTime<Utc>>,
    /// Who quarantined the test.
    pub by: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A test case's finished runs per bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendView {
    /// The test case.
    pub test_case_id: Uuid,
    /// `hour`, `day` or `week`.
    pub bucket: String,
    /// Oldest first.
    #[schema(value_type = Vec<TrendPointView>)]
    pub points: Vec<TrendPoint>,
}

/// The runs of one bucket (the schema of [`TrendPoint`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendPointView {
    /// Where the bucket starts.
    pub bucket: DateTime<Utc>,
    /// Runs finished in it.
    pub runs: i64,
    /// Of which passed.
    pub passed: i64,
    /// Of which failed.
    pub failed: i64,
    /// Of which ended `error`.
    pub error: i64,
    /// `passed / runs`.
    pub pass_rate: f64,
    /// Median run duration.
    pub duration_p50_ms: Option<i64>,
    /// 90th percentile of the run durations.
    pub duration_p90_ms: Option<i64>,
}

/// A test named in a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestRef {
    /// The test.
    pub test_id: Uuid,
    /// Its class or module.
    pub classname: String,
    /// Its name.
    pub name: String,
}

/// A test whose duration changed between two runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct DurationChangeView {
    /// The test.
    #[serde(flatten)]
    pub test: TestRef,
    /// In the first run.
    pub before_ms: u64,
    /// In the second run.
    pub after_ms: u64,
    /// `after - before`.
    pub change_ms: i64,
    /// `change / before`; null when the first run took 0 ms.
    pub relative: Option<f64>,
}

/// Two runs compared test by test, each by its last attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComparisonView {
    /// The first (earlier) run.
    pub run_id: Uuid,
    /// The second (later) run.
    pub other_run_id: Uuid,
    /// The first run's attempt compared (null: it reported no per-test results).
    pub attempt: Option<i32>,
    /// The second run's attempt compared.
    pub other_attempt: Option<i32>,
    /// Passed (or skipped) in the first, failed in the second.
    pub newly_failing: Vec<TestRef>,
    /// Failed in the first, passed in the second.
    pub fixed: Vec<TestRef>,
    /// Failed in both.
    pub still_failing: Vec<TestRef>,
    /// Only in the second.
    pub added: Vec<TestRef>,
    /// Only in the first.
    pub removed: Vec<TestRef>,
    /// The biggest duration changes (at most 20), the largest absolute change first.
    pub duration_changes: Vec<DurationChangeView>,
}
