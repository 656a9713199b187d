//! Splitting a suite across a group's shards by the tests' past durations.
//!
//! Longest first, each test goes onto the shard with the least predicted time so far (LPT,
//! Graham 1969: within 4/3 of the best possible split). A test never seen before is expected to
//! take the median of the known tests' durations (1 s when none is known), so a brand-new suite
//! still splits evenly by count. Every test is expected to take at least [`MIN_EXPECTED_MS`], so
//! thousands of tests JUnit timed at 0 ms are spread by count instead of piling onto one shard.
//! Ties break by name, so the same history gives the same split.

use std::cmp::Reverse;

/// Expected duration of a test when no test of the suite has a known one.
pub const UNKNOWN_DEFAULT_MS: u64 = 1_000;

/// The least a test is expected to take: JUnit reports sub-millisecond tests as 0 ms, yet each
/// still costs its runner something (pytest's own work per test is about a millisecond).
pub const MIN_EXPECTED_MS: u64 = 1;

/// A test to place: its name and what its history says it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestToSplit {
    /// JUnit classname (may be empty).
    pub classname: String,
    /// JUnit name.
    pub name: String,
    /// Its p50 duration, when its history has one.
    pub p50_ms: Option<u64>,
}

/// One shard of a split: its tests, in the order they were placed (longest first), and the
/// time they are predicted to take together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shard {
    /// `(classname, name)` of each test.
    pub tests: Vec<(String, String)>,
    /// Sum of the tests' expected durations.
    pub predicted_ms: u64,
}

/// Splits `tests` into `shards` shards (at least one) by expected duration (LPT). Shards may be
/// empty when there are fewer tests than shards.
pub fn split_by_duration(tests: &[TestToSplit], shards: usize) -> Vec<Shard> {
    let expected = expectations(tests);
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| {
        (Reverse(expected[a]), &tests[a].classname, &tests[a].name).cmp(&(
            Reverse(expected[b]),
            &tests[b].classname,
            &tests[b].name,
        ))
    });
    let mut out = vec![Shard::default(); shards.max(1)];
    for i in order {
        // The least-loaded shard, the first of equals.
        let Some(target) = out.iter_mut().min_by_key(|shard| shard.predicted_ms) else {
            continue;
        };
        target
            .tests
            .push((tests[i].classname.clone(), tests[i].name.clone()));
        target.predicted_ms += expected[i];
    }
    out
}

/// What a test with no known duration is expected to take: the median of the known ones, or
/// [`UNKNOWN_DEFAULT_MS`] when none is known.
pub fn unknown_expectation(tests: &[TestToSplit]) -> u64 {
    let mut known: Vec<u64> = tests.iter().filter_map(|test| test.p50_ms).collect();
    known.sort_unstable();
    known
        .get(known.len() / 2)
        .copied()
        .unwrap_or(UNKNOWN_DEFAULT_MS)
        .max(MIN_EXPECTED_MS)
}

/// The naive split a benchmark compares with: equal test counts per shard, in name order.
pub fn split_by_count(tests: &[TestToSplit], shards: usize) -> Vec<Shard> {
    let expected = expectations(tests);
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| {
        (&tests[a].classname, &tests[a].name).cmp(&(&tests[b].classname, &tests[b].name))
    });
    let shards = shards.max(1);
    let per_shard = tests.len().div_ceil(shards).max(1);
    let mut out = vec![Shard::default(); shards];
    for (rank, i) in order.into_iter().enumerate() {
        let shard = &mut out[(rank / per_shard).min(shards - 1)];
        shard
            .tests
            .push((tests[i].classname.clone(), tests[i].name.clone()));
        shard.predicted_ms += expected[i];
    }
    out
}

/// The least time any split of tests taking `durations_ms` into `shards` shards can take:
/// `max(total / shards, longest)` (the bound the group benchmark's ratio is taken against).
pub fn ideal_makespan_ms(durations_ms: &[u64], shards: usize) -> u64 {
    let total: u64 = durations_ms.iter().sum();
    let longest = durations_ms.iter().copied().max().unwrap_or(0);
    total.div_ceil(shards.max(1) as u64).max(longest)
}

/// Each test's expected duration: its p50 (at least [`MIN_EXPECTED_MS`]), or the median of the
/// known ones.
fn expectations(tests: &[TestToSplit]) -> Vec<u64> {
    let unknown = unknown_expectation(tests);
    tests
        .iter()
        .map(|test| test.p50_ms.map_or(unknown, |ms| ms.max(MIN_EXPECTED_MS)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(name: &str, p50_ms: Option<u64>) -> TestToSplit {
        TestToSplit {
            classname: "suite".into(),
            name: name.into(),
            p50_ms,
        }
    }

    fn names(shard: &Shard) -> Vec<&str> {
        shard.tests.iter().map(|(_, name)| name.as_str()).collect()
    }

    #[test]
    fn tests_timed_at_zero_spread_by_count() {
        let mut tests: Vec<TestToSplit> = (0..100)
            .map(|i| test(&format!("t{i:03}"), Some(0)))
            .collect();
        tests.push(test("slow", Some(23)));
        let shards = split_by_duration(&tests, 2);
        assert_eq!(names(&shards[0])[0], "slow");
        // 23 ms of the slow test against 100 instant ones at 1 ms each: 23 of them even the
        // shards out, the other 77 alternate.
        assert_eq!(shards[0].tests.len(), 1 + 39);
        assert_eq!(shards[1].tests.len(), 23 + 38);
        assert_eq!(shards[0].predicted_ms, 23 + 39);
        assert_eq!(shards[1].predicted_ms, 23 + 38);
        assert_eq!(unknown_expectation(&tests), MIN_EXPECTED_MS);
    }

    #[test]
    fn longest_first_onto_the_least_loaded_shard() {
        let tests = [
            test("a", Some(5)),
            test("b", Some(4)),
            test("c", Some(3)),
            test("d", Some(3)),
            test("e", Some(3)),
        ];
        let shards = split_by_duration(&tests, 2);
        // a→0 (5), b→1 (4), c→1 (7), d→0 (8), e→1 (10).
        assert_eq!(names(&shards[0]), ["a", "d"]);
        assert_eq!(names(&shards[1]), ["b", "c", "e"]);
        assert_eq!((shards[0].predicted_ms, shards[1].predicted_ms), (8, 10));
        // Every test once.
        let placed: usize = shards.iter().map(|s| s.tests.len()).sum();
        assert_eq!(placed, tests.len());
    }

    #[test]
    fn a_long_tail_splits_near_the_ideal_and_far_better_than_by_count() {
        // One long test per ten, in name order, so that a split by count piles them up.
        let tests: Vec<TestToSplit> = (0..40)
            .map(|i| test(&format!("t{i:02}"), Some(if i < 4 { 9_000 } else { 500 })))
            .collect();
        let durations: Vec<u64> = tests.iter().filter_map(|t| t.p50_ms).collect();
        let ideal = ideal_makespan_ms(&durations, 4);
        let worst = |shards: &[Shard]| shards.iter().map(|s| s.predicted_ms).max().unwrap_or(0);
        let by_duration = worst(&split_by_duration(&tests, 4));
        let by_count = worst(&split_by_count(&tests, 4));
        assert_eq!(ideal, 13_500);
        assert!(by_duration <= ideal * 115 / 100, "{by_duration} vs {ideal}");
        assert!(by_count > by_duration * 2, "{by_count} vs {by_duration}");
    }

    #[test]
    fn unknown_tests_are_expected_to_take_the_median_and_a_new_suite_splits_by_count() {
        let tests = [
            test("known", Some(100)),
            test("new", None),
            test("also", Some(300)),
        ];
        let shards = split_by_duration(&tests, 3);
        let predicted: Vec<u64> = shards.iter().map(|s| s.predicted_ms).collect();
        assert_eq!(
            predicted,
            [300, 300, 100],
            "the new test expected at the median, 300"
        );
        let fresh: Vec<TestToSplit> = (0..6).map(|i| test(&format!("n{i}"), None)).collect();
        let shards = split_by_duration(&fresh, 3);
        assert!(shards.iter().all(|s| s.tests.len() == 2));
        assert!(
            shards
                .iter()
                .all(|s| s.predicted_ms == 2 * UNKNOWN_DEFAULT_MS)
        );
    }

    #[test]
    fn more_shards_than_tests_leaves_shards_empty_and_zero_shards_means_one() {
        let tests = [test("only", Some(10))];
        let shards = split_by_duration(&tests, 3);
        assert_eq!(shards.iter().filter(|s| s.tests.is_empty()).count(), 2);
        assert_eq!(split_by_duration(&tests, 0).len(), 1);
        assert_eq!(split_by_count(&tests, 0).len(), 1);
    }

    #[test]
    fn the_same_history_gives_the_same_split() {
        let tests: Vec<TestToSplit> = (0..30)
            .map(|i| test(&format!("t{i}"), Some(100 + (i % 3) * 50)))
            .collect();
        let mut reversed = tests.clone();
        reversed.reverse();
        assert_eq!(
            split_by_duration(&tests, 4),
            split_by_duration(&reversed, 4)
        );
    }
}
