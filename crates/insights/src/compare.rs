//! What changed between two runs, test by test: newly failing, fixed, still failing, added,
//! removed, and the biggest changes in duration.

use crate::identity::TestId;
use runledger_types::command::TestOutcome;
use std::collections::BTreeMap;

/// One test's result in a run, as the comparison needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Result {
    /// What happened.
    pub outcome: TestOutcome,
    /// How long it took.
    pub duration_ms: u64,
}

/// A test whose duration changed.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationChange {
    /// The test.
    pub test_id: TestId,
    /// In the first run.
    pub before_ms: u64,
    /// In the second run.
    pub after_ms: u64,
    /// `after - before`.
    pub change_ms: i64,
    /// `change / before`; `None` when the first run took 0 ms.
    pub relative: Option<f64>,
}

/// Run `a` against run `b` (`b` the later one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comparison {
    /// Passed (or skipped) in `a`, failed in `b`.
    pub newly_failing: Vec<TestId>,
    /// Failed in `a`, passed in `b`.
    pub fixed: Vec<TestId>,
    /// Failed in both.
    pub still_failing: Vec<TestId>,
    /// Only in `b`.
    pub added: Vec<TestId>,
    /// Only in `a`.
    pub removed: Vec<TestId>,
    /// Tests in both, the largest absolute change first, at most `top` of them.
    pub duration_changes: Vec<DurationChange>,
}

fn failed(outcome: TestOutcome) -> bool {
    matches!(outcome, TestOutcome::Failed | TestOutcome::Error)
}

/// Compares the results of run `a` with those of run `b`; keeps the `top` biggest duration
/// changes. Every list is in test id order but the duration changes.
pub fn compare(
    a: &BTreeMap<TestId, Result>,
    b: &BTreeMap<TestId, Result>,
    top: usize,
) -> Comparison {
    let mut comparison = Comparison::default();
    for (test_id, before) in a {
        let Some(after) = b.get(test_id) else {
            comparison.removed.push(*test_id);
            continue;
        };
        match (failed(before.outcome), failed(after.outcome)) {
            (false, true) => comparison.newly_failing.push(*test_id),
            (true, false) if after.outcome == TestOutcome::Passed => {
                comparison.fixed.push(*test_id);
            }
            (true, true) => comparison.still_failing.push(*test_id),
            _ => {}
        }
        let change_ms = i128::from(after.duration_ms) - i128::from(before.duration_ms);
        let change_ms = i64::try_from(change_ms).unwrap_or(i64::MAX);
        comparison.duration_changes.push(DurationChange {
            test_id: *test_id,
            before_ms: before.duration_ms,
            after_ms: after.duration_ms,
            change_ms,
            relative: (before.duration_ms > 0)
                .then(|| change_ms as f64 / before.duration_ms as f64),
        });
    }
    comparison.added = b.keys().filter(|id| !a.contains_key(id)).copied().collect();
    comparison
        .duration_changes
        .sort_by_key(|change| std::cmp::Reverse(change.change_ms.unsigned_abs()));
    comparison
        .duration_changes
        .retain(|change| change.change_ms != 0);
    comparison.duration_changes.truncate(top);
    comparison
}

#[cfg(test)]
mod tests {
    use super::*;
    use TestOutcome::{Failed, Passed, Skipped};
    use uuid::Uuid;

    fn id(n: u128) -> TestId {
        TestId(Uuid::from_u128(n))
    }

    fn results(entries: &[(u128, TestOutcome, u64)]) -> BTreeMap<TestId, Result> {
        entries
            .iter()
            .map(|&(n, outcome, duration_ms)| {
                (
                    id(n),
                    Result {
                        outcome,
                        duration_ms,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn each_kind_of_change_is_sorted_out() {
        let a = results(&[
            (1, Passed, 100),
            (2, Failed, 100),
            (3, Failed, 100),
            (4, Passed, 100),
            (5, Passed, 0),
            (6, Failed, 10),
        ]);
        let b = results(&[
            (1, Failed, 100),
            (2, Passed, 150),
            (3, Failed, 400),
            (5, Passed, 20),
            (6, Skipped, 10),
            (7, Passed, 5),
        ]);
        let c = compare(&a, &b, 10);
        assert_eq!(c.newly_failing, [id(1)]);
        assert_eq!(c.fixed, [id(2)], "a skip is no fix");
        assert_eq!(c.still_failing, [id(3)]);
        assert_eq!(c.removed, [id(4)]);
        assert_eq!(c.added, [id(7)]);
        let order: Vec<_> = c.duration_changes.iter().map(|d| d.test_id).collect();
        assert_eq!(order, [id(3), id(2), id(5)]);
        assert_eq!(c.duration_changes[0].relative, Some(3.0));
        assert_eq!(c.duration_changes[2].relative, None, "from 0 ms");
        assert_eq!(compare(&a, &b, 1).duration_changes.len(), 1);
    }
}
