//! How quarantine weighs on a run's end. The executor reports what happened; the handler
//! decides what the log records, from the attempt's per-test results (its `run_tests_reported`
//! parts and the final report's `tests`) and the quarantines as they hold at the decision's
//! time. The `run_finished` it appends says what was decided, so a replay never decides again.
//!
//! Only a `failed` report is weighed: `error`, `timed_out` and `cancelled` say nothing about the
//! tests. Its summary's `quarantined_failed` counts the failing results of quarantined tests,
//! and when they are all of its failures the run is recorded `passed`. "All" needs proof: the
//! report has a summary, at least one failing result, every failing result is of a quarantined
//! test, and the summary counts no failure (`failed` + `errors`) beyond those results (a report
//! cut short, or a crash with no result, stays `failed`).

use crate::quarantine::failing_tests;
use crate::state::{Lab, RunState};
use chrono::{DateTime, Utc};
use runledger_types::command::ReportRunFinished;
use runledger_types::{RunStatus, TestSummary};
use std::borrow::Cow;

/// The report as the log records it: `report` itself, or a copy with the handler's
/// `quarantined_failed` count and, when every failure is excused, the status `passed`.
pub(super) fn weigh<'a>(
    lab: &Lab,
    run: &RunState,
    report: &'a ReportRunFinished,
    now: DateTime<Utc>,
) -> Cow<'a, ReportRunFinished> {
    let counted_by_executor = report.summary.map_or(0, |s| s.quarantined_failed);
    let Some(summary) = report
        .summary
        .filter(|_| report.status == RunStatus::Failed)
    else {
        // Only the handler counts quarantined failures: an executor's count is dropped.
        return match counted_by_executor {
            0 => Cow::Borrowed(report),
            _ => Cow::Owned(with_count(report, 0)),
        };
    };
    let failing = run
        .failing_tests
        .iter()
        .copied()
        .chain(failing_tests(run.test_case_id, &report.tests))
        .collect::<Vec<_>>();
    let excused = failing
        .iter()
        .filter(|test_id| lab.quarantine(test_id).is_some_and(|q| q.holds_at(now)))
        .count();
    let count = u32::try_from(excused).unwrap_or(u32::MAX);
    if count == 0 && counted_by_executor == 0 {
        return Cow::Borrowed(report);
    }
    let mut weighed = with_count(report, count);
    let all_failures = u64::from(summary.failed) + u64::from(summary.errors);
    if count > 0 && excused == failing.len() && all_failures == u64::from(count) {
        weighed.status = RunStatus::Passed;
        weighed.reason = Some(excused_reason(count, report.reason.as_deref()));
    }
    Cow::Owned(weighed)
}

/// `report` with its summary's `quarantined_failed` set to `count`.
fn with_count(report: &ReportRunFinished, count: u32) -> ReportRunFinished {
    let mut weighed = report.clone();
    weighed.summary = report.summary.map(|summary| TestSummary {
        quarantined_failed: count,
        ..summary
    });
    weighed
}

/// Why a failed report was recorded `passed`, keeping what the executor said.
fn excused_reason(count: u32, reported: Option<&str>) -> String {
    let tests = if count == 1 { "test" } else { "tests" };
    let mut reason = format!("passed: its only failures are of quarantined {tests} ({count})");
    if let Some(reported) = reported {
        reason.push_str("; reported failed: ");
        reason.push_str(reported);
    }
    reason
}
