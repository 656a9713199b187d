//! Per-test results too large for one NATS message (1 MiB by default) are sent ahead of
//! `report_run_finished` as numbered `report_run_tests` parts, each well under the limit, so a
//! suite of tens of thousands of tests loses none of its results.

use runledger_types::command::{ReportRunTests, TestResult};
use runledger_types::ids::RunId;

use super::{ReportError, Reporter};

/// Most bytes of serialized results in one part (or in `report_run_finished` itself): a quarter
/// of NATS's default message limit, leaving room for the envelope and for long names.
pub const MAX_TESTS_PART_BYTES: usize = 256 * 1024;

/// Sends `tests` as `report_run_tests` parts when they do not fit in one report; returns what
/// `report_run_finished` carries itself: all of them when they fit, else none.
pub(super) async fn send_in_parts<R: Reporter>(
    reporter: &R,
    run_id: RunId,
    tests: Vec<TestResult>,
) -> Result<Vec<TestResult>, ReportError> {
    let sizes: Vec<usize> = tests.iter().map(serialized_len).collect();
    if sizes.iter().sum::<usize>() <= MAX_TESTS_PART_BYTES {
        return Ok(tests);
    }
    let mut part = 0u32;
    let mut batch: Vec<TestResult> = Vec::new();
    let mut batch_bytes = 0;
    for (test, size) in tests.into_iter().zip(sizes) {
        if !batch.is_empty() && batch_bytes + size > MAX_TESTS_PART_BYTES {
            part += 1;
            send(reporter, run_id, part, std::mem::take(&mut batch)).await?;
            batch_bytes = 0;
        }
        batch_bytes += size;
        batch.push(test);
    }
    if !batch.is_empty() {
        send(reporter, run_id, part + 1, batch).await?;
    }
    Ok(Vec::new())
}

async fn send<R: Reporter>(
    reporter: &R,
    run_id: RunId,
    part: u32,
    tests: Vec<TestResult>,
) -> Result<(), ReportError> {
    tracing::debug!(part, tests = tests.len(), "per-test results sent in a part");
    let report = ReportRunTests {
        run_id,
        part,
        tests,
    };
    reporter.send_report(&report).await
}

fn serialized_len(test: &TestResult) -> usize {
    serde_json::to_vec(test).map_or(0, |bytes| bytes.len() + 1)
}
