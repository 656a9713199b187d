//! A test's figures from its counts and recent results: pass and fail rates, duration
//! percentiles over the last [`DURATION_WINDOW`] results that ran, and flakiness over the last
//! [`FLAKY_WINDOW`] (runledger-insights' rule; docs/insights.md).

use runledger_insights::{Observed, assess, percentile};
use runledger_readmodel::rows::{DURATION_WINDOW, FLAKY_WINDOW, RecentResult, TestRow};
use runledger_types::RunId;
use runledger_types::command::TestOutcome;

/// Sets the figures of `test` from its counts and `recent` (oldest first).
pub(super) fn compute(test: &mut TestRow, recent: &[RecentResult]) {
    let decided = test.passed + test.failed + test.errors;
    test.pass_rate = (decided > 0).then(|| test.passed as f64 / decided as f64);
    test.fail_rate = if test.runs > 0 {
        (test.failed + test.errors) as f64 / test.runs as f64
    } else {
        0.0
    };
    let ran: Vec<u64> = recent
        .iter()
        .filter(|result| result.status != TestOutcome::Skipped)
        .map(|result| result.duration_ms)
        .collect();
    let ran = &ran[ran.len().saturating_sub(DURATION_WINDOW)..];
    let millis = |p| percentile(ran, p).map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    test.duration_p50_ms = millis(50);
    test.duration_p90_ms = millis(90);
    let observed: Vec<Observed> = recent.iter().map(observed).collect();
    let flakiness = assess(&observed, FLAKY_WINDOW);
    test.flaky = flakiness.flaky;
    test.flaky_score = flakiness.score;
    test.flips = flakiness.flips;
}

fn observed(result: &RecentResult) -> Observed {
    Observed {
        run_id: RunId(result.run_id),
        attempt: result.attempt,
        rerun_of: result.rerun_of.map(RunId),
        outcome: result.status,
        inputs: result.inputs.simple().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn row() -> TestRow {
        let now = chrono::Utc::now();
        TestRow {
            test_id: Uuid::nil(),
            number: 1,
            test_case_id: Uuid::nil(),
            classname: "c".into(),
            name: "n".into(),
            runs: 0,
            passed: 0,
            failed: 0,
            errors: 0,
            skipped: 0,
            pass_rate: None,
            fail_rate: 0.0,
            last_status: "passed".into(),
            last_run_id: Uuid::nil(),
            last_run_at: now,
            last_changed_at: now,
            first_seen_at: now,
            last_failure_at: None,
            last_failure_run_id: None,
            last_failure_message: None,
            duration_p50_ms: None,
            duration_p90_ms: None,
            flaky: false,
            flaky_score: 0.0,
            flips: Vec::new(),
            recent: Vec::new(),
            last_position: 0,
        }
    }

    fn result(n: u128, status: TestOutcome, duration_ms: u64) -> RecentResult {
        RecentResult {
            run_id: Uuid::from_u128(n),
            attempt: 1,
            rerun_of: None,
            status,
            duration_ms,
            inputs: Uuid::nil(),
        }
    }

    #[test]
    fn rates_percentiles_and_flips_come_from_counts_and_recent_results() {
        let mut test = row();
        (test.runs, test.passed, test.failed, test.skipped) = (4, 2, 1, 1);
        let recent = [
            result(1, TestOutcome::Passed, 100),
            result(2, TestOutcome::Failed, 300),
            result(3, TestOutcome::Skipped, 0),
            result(4, TestOutcome::Passed, 200),
        ];
        compute(&mut test, &recent);
        assert_eq!(test.pass_rate, Some(2.0 / 3.0));
        assert_eq!(test.fail_rate, 0.25);
        // Skipped results take no time worth counting.
        assert_eq!(test.duration_p50_ms, Some(200));
        assert_eq!(test.duration_p90_ms, Some(300));
        assert!(test.flaky);
        assert_eq!(test.flaky_score, 1.0);
        assert_eq!(test.flips.len(), 2);
        assert_eq!(test.flips[0].from_run, RunId(Uuid::from_u128(1)));
        assert!(test.flips[1].fixed);
    }

    #[test]
    fn a_test_only_ever_skipped_has_no_pass_rate_and_is_not_flaky() {
        let mut test = row();
        (test.runs, test.skipped) = (2, 2);
        compute(
            &mut test,
            &[
                result(1, TestOutcome::Skipped, 0),
                result(2, TestOutcome::Skipped, 0),
            ],
        );
        assert_eq!(test.pass_rate, None);
        assert_eq!(test.duration_p50_ms, None);
        assert!(!test.flaky);
    }
}
