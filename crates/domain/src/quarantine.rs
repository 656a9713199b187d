//! Quarantined tests: which test a result is of, and which quarantines end by themselves.
//!
//! A run's per-test results name tests by test case, classname and name; a quarantine names
//! one by its [`TestId`], the UUID v5 `runledger_insights` computes from the three, so the
//! read models, the API's clients and the decisions here agree on what "this test" is.
//!
//! A quarantine with an end lapses by itself: the handler's quarantine watch reads [`ends`] on
//! a timer and, once an end has passed by its clock, sends `lapse_quarantine`, which
//! [`crate::decide`] accepts only when the end has passed at the decision's own time. Whether a
//! failure is excused never waits for that: a quarantine whose end has passed at the decision no
//! longer holds ([`crate::Quarantine::holds_at`]), lapse recorded or not.

use crate::state::Lab;
use chrono::{DateTime, Utc};
use runledger_insights::TestKey;
use runledger_types::command::{TestOutcome, TestResult};
use runledger_types::{TestCaseId, TestId};
use std::collections::BTreeMap;

/// The test a result of a run of `test_case_id` is of.
pub fn test_id(test_case_id: TestCaseId, result: &TestResult) -> TestId {
    TestId(
        TestKey::new(test_case_id, &result.classname, &result.name)
            .id()
            .0,
    )
}

/// True for a result that makes a run fail: `failed` or `error`.
pub fn is_failing(result: &TestResult) -> bool {
    matches!(result.status, TestOutcome::Failed | TestOutcome::Error)
}

/// The tests of the failing results among `tests`, one entry per result, in order.
pub fn failing_tests(test_case_id: TestCaseId, tests: &[TestResult]) -> Vec<TestId> {
    tests
        .iter()
        .filter(|result| is_failing(result))
        .map(|result| test_id(test_case_id, result))
        .collect()
}

/// Every quarantine that ends by itself, with its end: what the quarantine watch judges.
pub fn ends(lab: &Lab) -> BTreeMap<TestId, DateTime<Utc>> {
    lab.quarantines()
        .filter_map(|(test_id, quarantine)| quarantine.until.map(|until| (*test_id, until)))
        .collect()
}
