//! Flaky tests. The rule, applied to one test's results oldest first:
//!
//! - Only results that passed or failed count (`error` counts as failed; `skipped` not at all),
//!   and only the latest `window` of them.
//! - Results are compared within their inputs: the same test case definition, the same machine
//!   OS and the same run environment ([`Observed::inputs`]). A change of inputs explains a
//!   change of outcome; it is not a flake.
//! - A **flip** is a result whose outcome differs from the previous result of the same inputs.
//!   A failure followed by a pass in a later attempt of the same run, or in a rerun of that run,
//!   is a flip too, whatever the inputs: the code under test did not change in between.
//! - The test is **flaky** when it has at least one flip in the window; its **score** is the
//!   flips over the comparisons made (0 = steady, 1 = changes every time), and the flips are the
//!   evidence, each naming the two runs.

use runledger_types::RunId;
use runledger_types::command::TestOutcome;
use std::collections::HashMap;

/// One result of a test, as the flake rule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The run that reported it.
    pub run_id: RunId,
    /// Which attempt of the run.
    pub attempt: u32,
    /// The run this run reran, if it was a rerun.
    pub rerun_of: Option<RunId>,
    /// What happened.
    pub outcome: TestOutcome,
    /// A key of the inputs (test case definition, machine OS, environment): results of other
    /// inputs are not compared.
    pub inputs: String,
}

/// A change of outcome: the evidence of a flake (stored with its test's figures, hence serde).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Flip {
    /// The earlier run and attempt.
    pub from_run: RunId,
    /// Its attempt.
    pub from_attempt: u32,
    /// The later run (the same run for a retry).
    pub to_run: RunId,
    /// Its attempt.
    pub to_attempt: u32,
    /// True when the earlier result failed and the later passed.
    pub fixed: bool,
    /// True when the two are attempts of one run, or a run and its rerun.
    pub same_run: bool,
}

/// What the rule says of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct Flakiness {
    /// At least one flip in the window.
    pub flaky: bool,
    /// Flips over comparisons, 0 to 1.
    pub score: f64,
    /// The flips, oldest first.
    pub flips: Vec<Flip>,
}

/// Whether `outcome` counts, and as a pass (`true`) or a failure.
fn counts(outcome: TestOutcome) -> Option<bool> {
    match outcome {
        TestOutcome::Passed => Some(true),
        TestOutcome::Failed | TestOutcome::Error => Some(false),
        TestOutcome::Skipped => None,
    }
}

/// Applies the rule to `results` (oldest first) over the latest `window` that count.
pub fn assess(results: &[Observed], window: usize) -> Flakiness {
    let counted: Vec<(&Observed, bool)> = results
        .iter()
        .filter_map(|result| counts(result.outcome).map(|passed| (result, passed)))
        .collect();
    let recent = &counted[counted.len().saturating_sub(window)..];
    let mut last_of_inputs: HashMap<&str, (&Observed, bool)> = HashMap::new();
    let mut last_failure_of_run: HashMap<RunId, &Observed> = HashMap::new();
    let (mut flips, mut comparisons) = (Vec::new(), 0usize);
    for &(result, passed) in recent {
        let same_run_failure = if passed {
            last_failure_of_run
                .get(&result.run_id)
                .filter(|failed| failed.attempt < result.attempt)
                .or_else(|| {
                    result
                        .rerun_of
                        .and_then(|run| last_failure_of_run.get(&run))
                })
                .copied()
        } else {
            None
        };
        let previous = last_of_inputs.insert(&result.inputs, (result, passed));
        if let Some((earlier, earlier_passed)) = previous {
            comparisons += 1;
            if earlier_passed != passed {
                let same_run = same_run_failure.is_some_and(|failed| failed == earlier);
                flips.push(flip(earlier, result, passed, same_run));
                if !passed {
                    last_failure_of_run.insert(result.run_id, result);
                }
                continue;
            }
        }
        if let Some(failed) = same_run_failure {
            comparisons += 1;
            flips.push(flip(failed, result, true, true));
        }
        if !passed {
            last_failure_of_run.insert(result.run_id, result);
        }
    }
    let score = if comparisons == 0 {
        0.0
    } else {
        flips.len() as f64 / comparisons as f64
    };
    Flakiness {
        flaky: !flips.is_empty(),
        score,
        flips,
    }
}

fn flip(earlier: &Observed, later: &Observed, fixed: bool, same_run: bool) -> Flip {
    Flip {
        from_run: earlier.run_id,
        from_attempt: earlier.attempt,
        to_run: later.run_id,
        to_attempt: later.attempt,
        fixed,
        same_run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn run(n: u128) -> RunId {
        RunId(Uuid::from_u128(n))
    }

    fn seen(n: u128, outcome: TestOutcome) -> Observed {
        Observed {
            run_id: run(n),
            attempt: 1,
            rerun_of: None,
            outcome,
            inputs: "linux".into(),
        }
    }

    use TestOutcome::{Error, Failed, Passed, Skipped};

    #[test]
    fn a_steady_test_is_not_flaky() {
        let results: Vec<_> = (1..=10).map(|n| seen(n, Passed)).collect();
        let verdict = assess(&results, 30);
        assert!(!verdict.flaky);
        assert_eq!(verdict.score, 0.0);
    }

    #[test]
    fn a_test_that_fails_every_other_run_scores_one() {
        let results: Vec<_> = (1..=6)
            .map(|n| seen(n, if n % 2 == 0 { Failed } else { Passed }))
            .collect();
        let verdict = assess(&results, 30);
        assert!(verdict.flaky);
        assert_eq!(verdict.score, 1.0);
        assert_eq!(verdict.flips.len(), 5);
        assert_eq!(
            (verdict.flips[0].from_run, verdict.flips[0].to_run),
            (run(1), run(2))
        );
        assert!(!verdict.flips[0].fixed && verdict.flips[1].fixed);
    }

    #[test]
    fn a_test_broken_once_for_good_flips_once() {
        let results = [
            seen(1, Passed),
            seen(2, Passed),
            seen(3, Failed),
            seen(4, Error),
        ];
        let verdict = assess(&results, 30);
        assert_eq!(verdict.flips.len(), 1, "error counts as failed");
        assert!((verdict.score - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn only_the_window_counts_and_skips_do_not() {
        let mut results = vec![seen(1, Passed), seen(2, Failed)];
        results.extend((3..=7).map(|n| seen(n, Failed)));
        results.push(seen(8, Skipped));
        assert!(assess(&results, 30).flaky);
        assert!(
            !assess(&results, 5).flaky,
            "the flip is older than the window"
        );
    }

    #[test]
    fn other_inputs_explain_a_change() {
        let mut windows = seen(2, Failed);
        windows.inputs = "windows".into();
        let results = [seen(1, Passed), windows, seen(3, Passed)];
        assert!(!assess(&results, 30).flaky);
    }

    #[test]
    fn a_retry_that_passes_after_a_failure_is_a_flake_whatever_the_inputs() {
        let failed = seen(1, Failed);
        let mut retried = seen(1, Passed);
        retried.attempt = 2;
        retried.inputs = "another machine".into();
        let verdict = assess(&[failed, retried], 30);
        assert!(verdict.flaky);
        assert_eq!(verdict.flips.len(), 1);
        assert!(verdict.flips[0].same_run && verdict.flips[0].fixed);
        assert_eq!(
            (verdict.flips[0].from_attempt, verdict.flips[0].to_attempt),
            (1, 2)
        );
    }

    #[test]
    fn a_rerun_that_passes_names_the_failed_run() {
        let mut rerun = seen(2, Passed);
        rerun.rerun_of = Some(run(1));
        let verdict = assess(&[seen(1, Failed), rerun], 30);
        assert_eq!(verdict.flips.len(), 1);
        assert!(verdict.flips[0].same_run);
        assert_eq!(
            (verdict.flips[0].from_run, verdict.flips[0].to_run),
            (run(1), run(2))
        );
    }
}
