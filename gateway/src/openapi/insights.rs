//! The answers of the insight routes (`/api/v1/tests`, a test case's trend).

use chrono::{DateTime, Utc};
use runledger_readmodel::test_insights::{HistoryEntry, TestListRow, TrendPoint};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A page of tests.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestPage {
    /// The tests.
    pub items: Vec<TestListRow>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
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
    pub test: TestListRow,
    /// Its first result.
    pub first_seen_at: DateTime<Utc>,
    /// Its last failure or error.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// That failure's run.
    pub last_failure_run_id: Option<Uuid>,
    /// That failure's message.
    pub last_failure_message: Option<String>,
    /// Results, newest first.
    pub history: Vec<HistoryEntry>,
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
    pub points: Vec<TrendPoint>,
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
