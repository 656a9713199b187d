//! A rerun of a run as the runs read model knows it: `start_run` for the same test case, with
//! the env, labels and machine the run asked for (so its results count as the same inputs), and
//! `rerun_of` naming it. The gateway's rerun route and `runledger run rerun` both build it here.

use crate::rows::RunRow;
use runledger_types::command::{RerunOnly, StartRun};
use runledger_types::values::InvalidValue;
use runledger_types::{EnvName, Label, MachineId, RunId, TestCaseId, TestId};
use std::collections::{BTreeMap, BTreeSet};

/// The run's row holds a value `start_run` cannot take (written by an older runledger).
#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    /// Its env is not a map of valid names to strings.
    #[error("run {0}'s env cannot be asked for again: {1}")]
    Env(uuid::Uuid, serde_json::Error),
    /// A label is not valid.
    #[error("run {0}'s labels cannot be asked for again: {1}")]
    Label(uuid::Uuid, InvalidValue),
}

/// Which tests a rerun runs: `only` (the failures) or `tests`; neither: the whole suite.
#[derive(Debug, Clone, Default)]
pub struct RerunSelection {
    /// `failed`: the failing tests of the run's last attempt.
    pub only: Option<RerunOnly>,
    /// These tests.
    pub tests: Vec<TestId>,
}

/// `start_run` of the new run `run_id`, rerunning `row`'s run with `selection`.
pub fn rerun(
    row: &RunRow,
    run_id: RunId,
    selection: RerunSelection,
) -> Result<StartRun, RerunError> {
    let env: BTreeMap<EnvName, String> =
        serde_json::from_value(row.env.clone()).map_err(|err| RerunError::Env(row.run_id, err))?;
    let labels = row
        .labels
        .iter()
        .map(Label::parse)
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|err| RerunError::Label(row.run_id, err))?;
    Ok(StartRun {
        run_id,
        test_case_id: TestCaseId::from(row.test_case_id),
        machine_id: row.requested_machine_id.map(MachineId::from),
        labels,
        venv_id: None,
        env,
        rerun_of: Some(RunId::from(row.run_id)),
        only: selection.only,
        tests: selection.tests,
    })
}
