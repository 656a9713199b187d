//! Payloads that start and cancel runs.

use crate::ids::{MachineId, RunId, TestCaseId, VenvId};
use crate::values::{EnvName, Label};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

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
