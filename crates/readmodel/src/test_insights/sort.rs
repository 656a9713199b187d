//! The sorts of the tests list.

use super::TestsQueryError;

/// What the tests list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestSortKey {
    /// Failures and errors over results.
    FailRate,
    /// Flips over comparisons in the flaky window.
    FlakyScore,
    /// The 90th percentile of the recent durations (a test with none sorts as -1).
    DurationP90,
    /// The test's name.
    Name,
    /// When it last ran.
    LastRunAt,
}

impl TestSortKey {
    /// The SQL the key sorts on; each has a `(expression, test_id)` index.
    pub(super) fn expression(self) -> &'static str {
        match self {
            Self::FailRate => "fail_rate",
            Self::FlakyScore => "flaky_score",
            Self::DurationP90 => "(coalesce(duration_p90_ms, -1))",
            Self::Name => "name",
            Self::LastRunAt => "last_run_at",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::FailRate => "fail_rate",
            Self::FlakyScore => "flaky_score",
            Self::DurationP90 => "duration_p90",
            Self::Name => "name",
            Self::LastRunAt => "last_run_at",
        }
    }
}

/// A sort of the tests list: key and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestSort {
    /// The key.
    pub key: TestSortKey,
    /// Largest first.
    pub descending: bool,
}

impl Default for TestSort {
    /// The most failing first: `-fail_rate`.
    fn default() -> Self {
        Self {
            key: TestSortKey::FailRate,
            descending: true,
        }
    }
}

impl TestSort {
    /// Parses `-fail_rate`, `-flaky_score`, `-duration_p90`, `name`, `last_run_at`, ...
    /// (either direction; default `-fail_rate`).
    pub fn parse(raw: Option<&str>) -> Result<Self, TestsQueryError> {
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let key = match name {
            "fail_rate" => TestSortKey::FailRate,
            "flaky_score" => TestSortKey::FlakyScore,
            "duration_p90" | "duration_p90_ms" => TestSortKey::DurationP90,
            "name" => TestSortKey::Name,
            "last_run_at" => TestSortKey::LastRunAt,
            other => return Err(TestsQueryError::UnknownSort(other.to_owned())),
        };
        Ok(Self { key, descending })
    }

    /// The sort as cursors carry it.
    pub(super) fn label(self) -> String {
        format!(
            "tests:{}{}",
            if self.descending { "-" } else { "" },
            self.key.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_parse_with_direction_and_refuse_unknown_keys() {
        let sort = TestSort::parse(Some("-flaky_score")).unwrap();
        assert_eq!((sort.key, sort.descending), (TestSortKey::FlakyScore, true));
        assert_eq!(TestSort::parse(None).unwrap(), TestSort::default());
        assert_eq!(
            TestSort::parse(Some("duration_p90")).unwrap().key,
            TestSortKey::DurationP90
        );
        assert!(TestSort::parse(Some("colour")).is_err());
    }
}
