//! Payloads that start and cancel runs.

use super::InvalidPayload;
use crate::ids::{MachineId, RunId, TestCaseId, TestId, VenvId};
use crate::values::{EnvName, Label};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use utoipa::ToSchema;

/// Most tests one run may select (`tests`, or the failures `only: "failed"` picks).
pub const MAX_SELECTED_TESTS: usize = 10_000;

/// Most bytes a run's selection may take as `RUNLEDGER_TESTS` (one `classname::name` per line;
/// [`selection_bytes`]): Linux refuses a single argument or environment string over 128 KiB.
pub const MAX_SELECTION_BYTES: usize = 100 * 1024;

/// How many bytes `tests` take as `RUNLEDGER_TESTS`: each `classname::name`, newline-separated.
pub fn selection_bytes(tests: &[SelectedTest]) -> usize {
    let names: usize = tests
        .iter()
        .map(|test| test.classname.len() + "::".len() + test.name.len())
        .sum();
    names + tests.len().saturating_sub(1)
}

/// `start_run`: run a test case in a free venv chosen by `venv_id`, `machine_id` or `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The new run's id.
    pub run_id: RunId,
    /// What to run.
    pub test_case_id: TestCaseId,
    /// Only venvs on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<MachineId>,
    /// Only machines carrying all of these labels.
    #[serde(default)]
    pub labels: BTreeSet<Label>,
    /// Exactly this venv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venv_id: Option<VenvId>,
    /// Environment overrides on top of the test case's.
    #[serde(default)]
    pub env: BTreeMap<EnvName, String>,
    /// The finished run of the same test case this run reruns: the new run links to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<RunId>,
    /// `failed`: run only the tests that failed or errored in the last attempt of `rerun_of`
    /// (which it requires). Excludes `tests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<RerunOnly>,
    /// Run only these tests (ids of tests some run of the test case reported; at most
    /// [`MAX_SELECTED_TESTS`]). Excludes `only`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestId>,
}

impl StartRun {
    /// `only` needs `rerun_of` and excludes `tests`; `tests` holds at most
    /// [`MAX_SELECTED_TESTS`].
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        if self.only.is_some() && !self.tests.is_empty() {
            return Err(InvalidPayload(
                "payload: give `only` or `tests`, not both".into(),
            ));
        }
        if self.only.is_some() && self.rerun_of.is_none() {
            return Err(InvalidPayload(
                "payload.only: needs `rerun_of`, the run whose failures to run again".into(),
            ));
        }
        if self.tests.len() > MAX_SELECTED_TESTS {
            return Err(InvalidPayload(format!(
                "payload.tests: at most {MAX_SELECTED_TESTS} tests, not {}",
                self.tests.len()
            )));
        }
        Ok(self)
    }
}

/// Which tests of the rerun run to select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RerunOnly {
    /// The tests whose results were `failed` or `error` in its last attempt.
    Failed,
}

/// One selected test, as JUnit names it: what a run that selects tests runs, and what
/// `run_requested` records so the executor needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectedTest {
    /// Class or module (JUnit's `classname`; may be empty).
    #[serde(default)]
    pub classname: String,
    /// Test name.
    pub name: String,
}

impl fmt::Display for SelectedTest {
    /// `classname::name`, the form of one line of `RUNLEDGER_TESTS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.classname, self.name)
    }
}

/// `cancel_run`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    /// The run to cancel.
    pub run_id: RunId,
    /// Why, for the audit history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
