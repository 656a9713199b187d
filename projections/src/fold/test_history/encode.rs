//! The rows of the tests read model a rebuild writes most of, encoded by hand: history chunks
//! and reports in binary `COPY` rows, tests' rows in `COPY` text.

use super::seen::Entry;
use crate::binary_copy::BinaryCopy;
use crate::copy::escape;
use crate::error::ProjectionError;
use chrono::{DateTime, SecondsFormat, Utc};
use runledger_readmodel::rows::{ReportRow, TestRow, outcome_name};
use std::fmt::Write;
use uuid::Uuid;

/// One chunk of `test_id`'s history from `entries` (oldest first; not empty), newest first, in
/// the column order of `rm_tests.history`.
pub(super) fn chunk(test_id: Uuid, entries: &[Entry], out: &mut BinaryCopy) {
    let (Some(oldest), newest_first) = (entries.first(), entries.iter().rev()) else {
        return;
    };
    out.row(8);
    out.uuid(Some(test_id));
    out.int8(oldest.position);
    out.int4(oldest.ordinal);
    out.int8_array(newest_first.clone().map(|e| e.position));
    out.int4_array(newest_first.clone().map(|e| e.ordinal));
    out.text_array(newest_first.clone().map(|e| Some(outcome_name(e.status))));
    out.int8_array(newest_first.clone().map(|e| e.duration_ms));
    out.text_array(newest_first.map(|e| e.message.as_deref()));
}

/// `report` in the column order of `rm_tests.reports`.
pub(super) fn report(report: &ReportRow, out: &mut BinaryCopy) {
    out.row(9);
    out.int8(report.position);
    out.uuid(Some(report.run_id));
    out.int4(report.attempt);
    out.uuid(report.machine_id);
    out.uuid(report.venv_id);
    out.timestamptz(report.finished_at);
    out.int4_array(report.tests.iter().copied());
    out.text_array(report.statuses.iter().map(|s| Some(outcome_name(*s))));
    out.int8_array(report.durations.iter().copied());
}

/// A test's row as a line of COPY text in the column order of `rm_tests.tests`, by hand: a
/// rebuild writes every test's row at once, with its recent results as JSON (a unit test checks
/// it against the generic encoder).
pub(super) fn test_line(test: &TestRow, out: &mut String) -> Result<(), ProjectionError> {
    fn time(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
    fn optional(value: Option<impl std::fmt::Display>, out: &mut String) {
        match value {
            Some(value) => {
                let _ = write!(out, "{value}\t");
            }
            None => out.push_str("\\N\t"),
        }
    }
    fn json(value: &impl serde::Serialize, out: &mut String) -> Result<(), ProjectionError> {
        let text = serde_json::to_string(value)
            .map_err(|err| ProjectionError::Corrupt(format!("a test row's JSON: {err}")))?;
        escape(&text, out);
        out.push('\t');
        Ok(())
    }
    let _ = write!(
        out,
        "{}\t{}\t{}\t",
        test.test_id, test.number, test.test_case_id
    );
    escape(&test.classname, out);
    out.push('\t');
    escape(&test.name, out);
    let _ = write!(
        out,
        "\t{}\t{}\t{}\t{}\t{}\t",
        test.runs, test.passed, test.failed, test.errors, test.skipped
    );
    optional(test.pass_rate.map(Float), out);
    let _ = write!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t",
        Float(test.fail_rate),
        test.last_status,
        test.last_run_id,
        time(test.last_run_at),
        time(test.last_changed_at),
        time(test.first_seen_at)
    );
    optional(test.last_failure_at.map(time), out);
    optional(test.last_failure_run_id, out);
    match &test.last_failure_message {
        Some(message) => {
            escape(message, out);
            out.push('\t');
        }
        None => out.push_str("\\N\t"),
    }
    optional(test.duration_p50_ms, out);
    optional(test.duration_p90_ms, out);
    let _ = write!(
        out,
        "{}\t{}\t",
        if test.flaky { 't' } else { 'f' },
        Float(test.flaky_score)
    );
    json(&test.flips, out)?;
    json(&test.recent, out)?;
    let _ = writeln!(out, "{}", test.last_position);
    Ok(())
}

/// A float as serde_json writes it (`1.0`, not `1`).
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
