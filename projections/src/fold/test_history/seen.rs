//! One result as the tests fold takes it: what it changes in its test's row ([`Seen`]) and
//! how it waits for the flush to be written in a history chunk ([`Entry`]).

use crate::fold::Fact;
use runledger_readmodel::rows::{HistoryChunk, RECENT, RecentResult, TestRow, outcome_name};
use runledger_types::command::{TestOutcome, TestResult};
use uuid::Uuid;

/// One result of a test, waiting for the flush to write it in a history chunk.
#[derive(Debug)]
pub(super) struct Entry {
    pub position: i64,
    pub ordinal: i32,
    pub status: TestOutcome,
    pub duration_ms: i64,
    pub message: Option<String>,
}

impl Entry {
    /// The `ordinal`-th result of the event at `position`.
    pub fn of(position: i64, ordinal: usize, result: &TestResult) -> Self {
        Self {
            position,
            ordinal: i32::try_from(ordinal).unwrap_or(i32::MAX),
            status: result.status,
            duration_ms: i64::try_from(result.duration_ms).unwrap_or(i64::MAX),
            message: result.message.clone(),
        }
    }
}

/// One chunk of `test_id`'s history from `entries` (oldest first), newest first; `None` when
/// there are none.
pub(super) fn chunk(test_id: Uuid, entries: &[Entry]) -> Option<HistoryChunk> {
    let oldest = entries.first()?;
    let newest_first = entries.iter().rev();
    Some(HistoryChunk {
        test_id,
        from_position: oldest.position,
        from_ordinal: oldest.ordinal,
        positions: newest_first.clone().map(|e| e.position).collect(),
        ordinals: newest_first.clone().map(|e| e.ordinal).collect(),
        statuses: newest_first.clone().map(|e| e.status).collect(),
        durations: newest_first.clone().map(|e| e.duration_ms).collect(),
        messages: newest_first.map(|e| e.message.clone()).collect(),
    })
}

/// One result as it changes its test's row.
pub(super) struct Seen<'a> {
    pub fact: &'a Fact,
    pub result: &'a TestResult,
    pub recent: RecentResult,
}

impl Seen<'_> {
    /// The row of a test seen for the first time, before this result is applied.
    pub fn first(&self, test_id: Uuid, number: i32, test_case_id: Uuid) -> TestRow {
        let status = outcome_name(self.result.status);
        TestRow {
            test_id,
            number,
            test_case_id,
            classname: self.result.classname.clone(),
            name: self.result.name.clone(),
            runs: 0,
            passed: 0,
            failed: 0,
            errors: 0,
            skipped: 0,
            pass_rate: None,
            fail_rate: 0.0,
            last_status: status.to_owned(),
            last_run_id: self.recent.run_id,
            last_run_at: self.fact.recorded_at,
            last_changed_at: self.fact.recorded_at,
            first_seen_at: self.fact.recorded_at,
            last_failure_at: None,
            last_failure_run_id: None,
            last_failure_message: None,
            duration_p50_ms: None,
            duration_p90_ms: None,
            flaky: false,
            flaky_score: 0.0,
            flips: Vec::new(),
            recent: Vec::new(),
            last_position: self.fact.position,
        }
    }

    pub fn apply(&self, test: &mut TestRow) {
        let status = outcome_name(self.result.status);
        test.runs += 1;
        match self.result.status {
            TestOutcome::Passed => test.passed += 1,
            TestOutcome::Failed => test.failed += 1,
            TestOutcome::Error => test.errors += 1,
            TestOutcome::Skipped => test.skipped += 1,
        }
        if matches!(self.result.status, TestOutcome::Failed | TestOutcome::Error) {
            test.last_failure_at = Some(self.fact.recorded_at);
            test.last_failure_run_id = Some(self.recent.run_id);
            test.last_failure_message.clone_from(&self.result.message);
        }
        if test.last_status != status {
            test.last_changed_at = self.fact.recorded_at;
            test.last_status = status.to_owned();
        }
        test.last_run_id = self.recent.run_id;
        test.last_run_at = self.fact.recorded_at;
        test.last_position = self.fact.position;
        test.recent.push(self.recent.clone());
        // Trimmed to RECENT when the batch's figures are computed; here only now and then, so
        // a batch of many results does not shift the list on every one.
        if test.recent.len() >= 2 * RECENT {
            let over = test.recent.len() - RECENT;
            test.recent.drain(..over);
        }
    }
}
