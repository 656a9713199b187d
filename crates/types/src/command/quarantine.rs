//! Payloads that quarantine tests: while a test is quarantined its failures are still recorded
//! and shown, but do not make a run `failed` (the handler decides, from the run's per-test
//! results and the quarantines of the log).

use crate::ids::{TestCaseId, TestId};
use crate::values::Reason;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `quarantine_test`: quarantine one test, or change the reason or end of its quarantine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineTest {
    /// The test: the UUID v5 of its test case, classname and name (`runledger_insights::TestKey`).
    pub test_id: TestId,
    /// Why, for the audit history and the people who see its failures excused.
    pub reason: Reason,
    /// When the quarantine ends by itself (RFC 3339; must be in the future when the command is
    /// decided). Absent: until released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The test case whose runs report the test, for readers of the log; must be defined. Not
    /// checked against `test_id`, which cannot be reversed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_id: Option<TestCaseId>,
}

/// `release_test`: end a test's quarantine; its failures count again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTest {
    /// The quarantined test.
    pub test_id: TestId,
}

/// `lapse_quarantine`: a quarantine's `until` has passed, so it ends by itself. Sent by the
/// handler's quarantine watch; accepted only once `until` has passed at the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LapseQuarantine {
    /// The quarantined test.
    pub test_id: TestId,
}
