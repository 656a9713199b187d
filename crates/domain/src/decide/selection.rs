//! Which tests a new run runs: the failures of an earlier run (`rerun_of` with
//! `only: "failed"`), tests named by id (`tests`), or the whole suite.
//!
//! Resolved here, at the decision, into JUnit names (`classname`, `name`) that `run_requested`
//! records: the executor then needs nothing but the event, and a replay never resolves again.
//! A test id resolves through the tests the lab has seen reported by runs of the same test case
//! ([`Lab::reported_test`]); a run's failures are the failing results (`failed` or `error`) of
//! its last attempt, each test once, in report order.

use super::reject;
use crate::state::{FinishedRun, Lab};
use runledger_types::command::{
    MAX_SELECTED_TESTS, MAX_SELECTION_BYTES, RerunOnly, SelectedTest, StartRun, selection_bytes,
};
use runledger_types::{Rejection, RejectionCode, RunId, TestCaseId, TestId};

/// What `run_requested` records of a run's selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Selection {
    /// The finished run it reruns.
    pub(super) rerun_of: Option<RunId>,
    /// The tests to run; empty: the whole suite.
    pub(super) tests: Vec<SelectedTest>,
}

impl Selection {
    /// True when the run runs only some tests.
    pub(super) fn is_partial(&self) -> bool {
        !self.tests.is_empty()
    }
}

/// Resolves `command`'s `rerun_of`, `only` and `tests` against the lab.
pub(super) fn select(lab: &Lab, command: &StartRun) -> Result<Selection, Rejection> {
    let source = match command.rerun_of {
        Some(run_id) => Some((run_id, rerun_source(lab, run_id, command.test_case_id)?)),
        None => None,
    };
    let (tests, field) = match (command.only, &source) {
        (Some(RerunOnly::Failed), Some((run_id, source))) => {
            (failures(lab, *run_id, source)?, "payload.only")
        }
        // `only` without `rerun_of` is refused when the payload is parsed.
        (Some(RerunOnly::Failed), None) => (Vec::new(), "payload.only"),
        (None, _) => (
            by_id(lab, command.test_case_id, &command.tests)?,
            "payload.tests",
        ),
    };
    fits_one_variable(&tests, |count, bytes| {
        format!(
            "{field}: the {count} selected tests' names take {bytes} bytes, more than the \
             {MAX_SELECTION_BYTES} a run's RUNLEDGER_TESTS may carry: select fewer tests, or \
             run the whole suite"
        )
    })?;
    Ok(Selection {
        rerun_of: command.rerun_of,
        tests,
    })
}

/// `selection_too_large`, with the message `why(count, bytes)`, when `tests` would take more
/// than [`MAX_SELECTION_BYTES`] as `RUNLEDGER_TESTS`: refused here, where the caller hears of
/// it, not when the executor cannot start the run.
pub(super) fn fits_one_variable(
    tests: &[SelectedTest],
    why: impl FnOnce(usize, usize) -> String,
) -> Result<(), Rejection> {
    let bytes = selection_bytes(tests);
    if bytes <= MAX_SELECTION_BYTES {
        return Ok(());
    }
    reject(RejectionCode::SelectionTooLarge, why(tests.len(), bytes))
}

/// The run a rerun names: finished, and of the same test case.
fn rerun_source(
    lab: &Lab,
    run_id: RunId,
    test_case_id: TestCaseId,
) -> Result<FinishedRun, Rejection> {
    match lab.finished_run(&run_id) {
        Some(found) if found.test_case_id != test_case_id => reject(
            RejectionCode::RerunTestCaseMismatch,
            format!(
                "payload.rerun_of: run {run_id} ran test case {}, not {test_case_id}",
                found.test_case_id
            ),
        ),
        Some(found) => Ok(found),
        None if lab.run(&run_id).is_some() => reject(
            RejectionCode::RunNotFinished,
            format!("payload.rerun_of: run {run_id} has not finished yet"),
        ),
        None => reject(
            RejectionCode::UnknownRun,
            format!("payload.rerun_of: run {run_id} does not exist"),
        ),
    }
}

/// The failing tests of `source`'s last attempt, or `nothing_to_rerun`.
fn failures(
    lab: &Lab,
    run_id: RunId,
    source: &FinishedRun,
) -> Result<Vec<SelectedTest>, Rejection> {
    if source.failing.is_empty() {
        return reject(
            RejectionCode::NothingToRerun,
            format!(
                "run {run_id} ended {} with no failing test in its last attempt: nothing to rerun",
                source.status.as_str()
            ),
        );
    }
    if source.failing.len() > MAX_SELECTED_TESTS {
        return reject(
            RejectionCode::InvalidPayload,
            format!(
                "payload.only: run {run_id} has {} failing tests, more than the {MAX_SELECTED_TESTS} \
                 one run may select",
                source.failing.len()
            ),
        );
    }
    Ok(source
        .failing
        .iter()
        .filter_map(|test_id| lab.reported_test(test_id))
        .map(|reported| reported.test.clone())
        .collect())
}

/// The tests `ids` name, each once, or `unknown_test` naming the first few unknown ones.
fn by_id(
    lab: &Lab,
    test_case_id: TestCaseId,
    ids: &[TestId],
) -> Result<Vec<SelectedTest>, Rejection> {
    let mut tests = Vec::with_capacity(ids.len());
    let mut unknown = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        match lab.reported_test(id) {
            Some(found) if found.test_case_id == test_case_id => tests.push(found.test.clone()),
            _ => unknown.push(id.to_string()),
        }
    }
    if unknown.is_empty() {
        return Ok(tests);
    }
    let count = unknown.len();
    unknown.truncate(5);
    reject(
        RejectionCode::UnknownTest,
        format!(
            "payload.tests: no run of test case {test_case_id} reported {count} of them: {}{}",
            unknown.join(", "),
            if count > 5 { ", …" } else { "" }
        ),
    )
}
