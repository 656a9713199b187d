//! `report_run_tests`: a part of a running run's per-test results, for reports too large for
//! one message. Parts are numbered from 1 per attempt: one already recorded changes nothing,
//! one that skips a number is refused (`output_gap`) so that the parts are whole and in order.

use super::reject;
use crate::state::Lab;
use runledger_types::command::ReportRunTests;
use runledger_types::event::RunTestsReported;
use runledger_types::{Event, Rejection, RejectionCode};

/// `run_tests_reported` for the next part, from the executor that started the run.
pub(super) fn run_tests(
    lab: &Lab,
    executor: &str,
    command: &ReportRunTests,
) -> Result<Vec<Event>, Rejection> {
    let run_id = command.run_id;
    let found = super::reports::running_by(lab, run_id, executor)?;
    if command.part <= found.tests_parts {
        return Ok(Vec::new());
    }
    let expected = found.tests_parts + 1;
    if command.part != expected {
        return reject(
            RejectionCode::OutputGap,
            format!(
                "run {run_id}: test results part {} arrived before part {expected}",
                command.part
            ),
        );
    }
    Ok(vec![Event::RunTestsReported(RunTestsReported {
        run_id,
        part: command.part,
        tests: command.tests.clone(),
    })])
}
