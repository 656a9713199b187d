//! The `tests` read model: every per-test result of every attempt, placed on its run (test
//! case, attempt, machine, venv, env), and per test the figures of [`figures`].

mod figures;

mod encode;
mod seen;

use super::{Fact, json, wire_name};
use crate::binary_copy::{BinaryCopy, BulkRows, copy_binary};
use crate::error::ProjectionError;
use crate::table::{KeyedRow, RowCache, upsert_rows};
use runledger_readmodel::rows::{
    CHUNK, HistoryChunk, QuarantineRow, RECENT, RecentResult, ReportRow, TESTS_TABLES,
    TestMachineRow, TestRow, TestRunRow,
};
use runledger_types::command::TestResult;
use runledger_types::event::{RunAssigned, RunRequested};
use runledger_types::{Event, RunId, TestCaseId};
use seen::{Entry, Seen};
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

impl KeyedRow for TestRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.test_id
    }
    fn copy_line(
        &self,
        _table: &runledger_readmodel::Table,
        out: &mut String,
    ) -> Result<(), ProjectionError> {
        encode::test_line(self, out)
    }
}

impl KeyedRow for QuarantineRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.test_id
    }
}

impl KeyedRow for TestRunRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.run_id
    }
}

/// Bytes of full chunks a rebuild gathers before it writes them.
const WRITE_AHEAD: usize = 8 << 20;

/// Tests and runs kept cached between batches; past this many each cache starts over.
const CACHE_CAPACITY: usize = 100_000;

/// Folds run and machine events into test results and per-test figures.
#[derive(Debug)]
pub struct TestsFold {
    tests: RowCache<TestRow>,
    runs: RowCache<TestRunRow>,
    quarantines: RowCache<QuarantineRow>,
    /// Each test given results since the last flush, with those not yet in a full chunk,
    /// oldest first.
    pending: HashMap<Uuid, Vec<Entry>>,
    /// Full chunks (of [`CHUNK`] results), encoded as soon as they fill: so a rebuild's memory
    /// holds no more than a part-chunk per test, and writes them while it reads on.
    full_chunks: BinaryCopy,
    /// The events that reported results since the last flush.
    reports: Vec<ReportRow>,
    /// The test ids of the results of each event `prepare` saw, by position: each is computed
    /// once (a SHA-1), not again when the event is applied.
    ids: HashMap<i64, Vec<Uuid>>,
    /// The number of the last test seen for the first time ([`TestRow::number`]).
    last_number: i32,
    machines: HashMap<Uuid, TestMachineRow>,
    new_machines: Vec<TestMachineRow>,
}

impl Default for TestsFold {
    fn default() -> Self {
        Self {
            tests: RowCache::new(&TESTS_TABLES[0], CACHE_CAPACITY),
            runs: RowCache::new(&TESTS_TABLES[3], CACHE_CAPACITY),
            quarantines: RowCache::new(&TESTS_TABLES[4], CACHE_CAPACITY),
            pending: HashMap::new(),
            full_chunks: BinaryCopy::new(),
            reports: Vec::new(),
            ids: HashMap::new(),
            last_number: 0,
            machines: HashMap::new(),
            new_machines: Vec::new(),
        }
    }
}

impl TestsFold {
    /// Loads the machines (all of them: there are few) and the last test number given.
    pub async fn load_state(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        let sql = format!("SELECT coalesce(max(number), 0) FROM {schema}.tests");
        self.last_number = sqlx::query_scalar(&sql).fetch_one(&mut **tx).await?;
        let sql = format!("SELECT row_to_json(t)::text FROM {schema}.machines t");
        let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&mut **tx).await?;
        self.machines.clear();
        for text in rows {
            let row: TestMachineRow = serde_json::from_str(&text)
                .map_err(|err| ProjectionError::Corrupt(format!("{schema}.machines: {err}")))?;
            self.machines.insert(row.machine_id, row);
        }
        Ok(())
    }

    /// Loads the runs `facts` touch, then the tests their results name.
    pub async fn prepare(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        let runs = super::keys_to_load(facts, |event| {
            run_of(event).map(|run_id| (run_id, matches!(event, Event::RunRequested(_))))
        });
        self.runs.load(tx, schema, runs).await?;
        let quarantined = facts.iter().filter_map(|fact| match &fact.event {
            Event::TestQuarantined(e) => Some(e.test_id.0),
            Event::TestReleased(e) => Some(e.test_id.0),
            _ => None,
        });
        self.quarantines.load(tx, schema, quarantined).await?;
        // The test case of each run, from the cache or from a request earlier in the batch.
        let mut cases: HashMap<Uuid, Uuid> = HashMap::new();
        let mut tests = HashSet::new();
        for fact in facts {
            let (run_id, results) = match &fact.event {
                Event::RunRequested(e) => {
                    cases.insert(e.run_id.0, e.test_case_id.0);
                    continue;
                }
                Event::RunTestsReported(e) => (e.run_id.0, &e.tests),
                Event::RunFinished(e) => (e.run_id.0, &e.tests),
                _ => continue,
            };
            let case = cases
                .get(&run_id)
                .copied()
                .or_else(|| self.runs.get(&run_id).map(|run| run.test_case_id));
            if let Some(case) = case {
                let ids: Vec<Uuid> = results.iter().map(|result| test_id(case, result)).collect();
                tests.extend(ids.iter().copied());
                self.ids.insert(fact.position, ids);
            }
        }
        self.tests.load(tx, schema, tests).await
    }

    /// Folds one event.
    pub fn apply(&mut self, fact: &Fact) {
        match &fact.event {
            Event::MachineRegistered(e) => self.machine(e.machine_id.0, |machine| {
                machine.name = e.name.as_str().to_owned();
                machine.os = wire_name(&e.os);
            }),
            Event::MachineUpdated(e) => self.machine(e.machine_id.0, |machine| {
                if let Some(name) = &e.name {
                    machine.name = name.as_str().to_owned();
                }
                if let Some(os) = &e.os {
                    machine.os = wire_name(os);
                }
            }),
            Event::RunRequested(e) => self.requested(e),
            Event::RunAssigned(e) => self.assigned(e),
            Event::RunTestsReported(e) => self.results(fact, e.run_id, &e.tests),
            Event::RunFinished(e) => self.results(fact, e.run_id, &e.tests),
            Event::TestQuarantined(e) => self.quarantines.put(QuarantineRow {
                test_id: e.test_id.0,
                test_case_id: e.test_case_id.map(|id| id.0),
                reason: e.reason.as_str().to_owned(),
                until: e.until,
                by: e.by.as_str().to_owned(),
                since: fact.recorded_at,
                position: fact.position,
            }),
            Event::TestReleased(e) => self.quarantines.delete(e.test_id.0),
            _ => {}
        }
    }

    /// Writes the batch's changes.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        self.compute_figures();
        self.tests.flush(tx, schema).await?;
        let mut chunks = std::mem::replace(&mut self.full_chunks, BinaryCopy::new());
        for (test_id, entries) in &self.pending {
            if !entries.is_empty() {
                encode::chunk(*test_id, entries, &mut chunks);
            }
        }
        copy_binary(tx, &TESTS_TABLES[1], schema, chunks).await?;
        let reports = self.encode_reports();
        copy_binary(tx, &TESTS_TABLES[2], schema, reports).await?;
        self.runs.flush(tx, schema).await?;
        self.quarantines.flush(tx, schema).await?;
        upsert_rows(tx, &TESTS_TABLES[5], schema, &self.new_machines).await?;
        Ok(())
    }

    /// Computes the figures of the tests given results since the last flush (once per batch,
    /// not per result), trimming their recent results to [`RECENT`] first.
    fn compute_figures(&mut self) {
        for test_id in self.pending.keys() {
            self.tests.update(test_id, |test| {
                let mut recent = std::mem::take(&mut test.recent);
                let over = recent.len().saturating_sub(RECENT);
                recent.drain(..over);
                figures::compute(test, &recent);
                test.recent = recent;
            });
        }
    }

    /// The full chunks encoded so far, once there are [`WRITE_AHEAD`] bytes of them, and the
    /// reports folded so far: rows a rebuild may write while it reads on (on a connection of
    /// its own), rather than at the end of its batch. With `all`, at the end of a batch, the
    /// part-chunks too, whatever their size.
    pub fn take_ahead(&mut self, all: bool) -> Vec<BulkRows> {
        if all {
            for (test_id, entries) in &mut self.pending {
                if !entries.is_empty() {
                    encode::chunk(*test_id, entries, &mut self.full_chunks);
                    entries.clear();
                }
            }
        } else if self.full_chunks.len() < WRITE_AHEAD {
            return Vec::new();
        }
        let chunks = std::mem::replace(&mut self.full_chunks, BinaryCopy::new());
        vec![
            BulkRows {
                table: &TESTS_TABLES[1],
                rows: chunks,
            },
            BulkRows {
                table: &TESTS_TABLES[2],
                rows: self.encode_reports(),
            },
        ]
    }

    fn encode_reports(&mut self) -> BinaryCopy {
        let mut reports = BinaryCopy::new();
        for report in self.reports.drain(..) {
            encode::report(&report, &mut reports);
        }
        reports
    }

    /// The chunks the next flush writes that are not full yet: each test's results not in a
    /// full chunk, newest first (for tests and inspection).
    pub fn history_chunks(&self) -> Vec<HistoryChunk> {
        self.pending
            .iter()
            .filter_map(|(test_id, entries)| seen::chunk(*test_id, entries))
            .collect()
    }

    /// The reports folded since the last flush.
    pub fn pending_reports(&self) -> &[ReportRow] {
        &self.reports
    }

    /// After commit.
    pub fn committed(&mut self) {
        self.pending.clear();
        self.full_chunks = BinaryCopy::new();
        self.reports.clear();
        self.ids.clear();
        self.new_machines.clear();
        self.tests.committed(|_| true);
        self.runs.committed(|_| true);
        self.quarantines.committed(|_| true);
    }

    /// Forgets cached rows and unwritten changes.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.full_chunks = BinaryCopy::new();
        self.reports.clear();
        self.ids.clear();
        self.new_machines.clear();
        self.tests.clear();
        self.runs.clear();
        self.quarantines.clear();
        self.machines.clear();
    }

    /// The row of the test `test_id`, its figures up to date (for tests and inspection).
    pub fn test(&mut self, test_id: Uuid) -> Option<&TestRow> {
        self.compute_figures();
        self.tests.get(&test_id)
    }

    /// The quarantine of `test_id`, if cached and in force (for tests and inspection).
    pub fn quarantine(&self, test_id: Uuid) -> Option<&QuarantineRow> {
        self.quarantines.get(&test_id)
    }

    fn machine(&mut self, machine_id: Uuid, change: impl FnOnce(&mut TestMachineRow)) {
        let machine = self
            .machines
            .entry(machine_id)
            .or_insert_with(|| TestMachineRow {
                machine_id,
                name: String::new(),
                os: String::new(),
            });
        change(machine);
        let machine = machine.clone();
        self.new_machines.retain(|row| row.machine_id != machine_id);
        self.new_machines.push(machine);
    }

    fn requested(&mut self, e: &RunRequested) {
        self.runs.create(TestRunRow {
            run_id: e.run_id.0,
            test_case_id: e.test_case_id.0,
            env: json(&e.env),
            attempt: 0,
            machine_id: None,
            venv_id: None,
            os: None,
            rerun_of: e.rerun_of.map(|id| id.0),
        });
    }

    fn assigned(&mut self, e: &RunAssigned) {
        let machine_id = e.machine_id.map(|id| id.0);
        let os = machine_id
            .and_then(|id| self.machines.get(&id))
            .map(|machine| machine.os.clone());
        self.runs.update(&e.run_id.0, |run| {
            run.attempt = i32::try_from(e.attempt).unwrap_or(i32::MAX);
            run.machine_id = machine_id;
            run.venv_id = e.venv_id.map(|id| id.0);
            run.os = os;
        });
    }

    fn results(&mut self, fact: &Fact, run_id: RunId, results: &[TestResult]) {
        if results.is_empty() {
            return;
        }
        let Some(run) = self.runs.get(&run_id.0).cloned() else {
            tracing::warn!(%run_id, position = fact.position, "test results of a run the read model does not know; skipped");
            return;
        };
        let ids = match self.ids.remove(&fact.position) {
            Some(ids) if ids.len() == results.len() => ids,
            _ => results
                .iter()
                .map(|result| test_id(run.test_case_id, result))
                .collect::<Vec<Uuid>>(),
        };
        let inputs = inputs_of(&run);
        let mut report = ReportRow {
            position: fact.position,
            run_id: run.run_id,
            attempt: run.attempt,
            machine_id: run.machine_id,
            venv_id: run.venv_id,
            finished_at: fact.recorded_at,
            tests: Vec::with_capacity(results.len()),
            statuses: Vec::with_capacity(results.len()),
            durations: Vec::with_capacity(results.len()),
        };
        for (ordinal, (result, test_id)) in results.iter().zip(ids).enumerate() {
            let entry = Entry::of(fact.position, ordinal, result);
            report.statuses.push(entry.status);
            report.durations.push(entry.duration_ms);
            let entries = self.pending.entry(test_id).or_default();
            entries.push(entry);
            if entries.len() == CHUNK {
                encode::chunk(test_id, entries, &mut self.full_chunks);
                entries.clear();
            }
            let seen = Seen {
                fact,
                result,
                recent: RecentResult {
                    run_id: run.run_id,
                    attempt: u32::try_from(run.attempt).unwrap_or(0),
                    rerun_of: run.rerun_of,
                    status: result.status,
                    duration_ms: result.duration_ms,
                    inputs,
                },
            };
            let mut number = 0;
            let known = self.tests.update(&test_id, |test| {
                seen.apply(test);
                number = test.number;
            });
            if !known {
                self.last_number += 1;
                number = self.last_number;
                let mut test = seen.first(test_id, number, run.test_case_id);
                seen.apply(&mut test);
                self.tests.put(test);
            }
            report.tests.push(number);
        }
        self.reports.push(report);
    }
}

/// A result's test id (runledger-insights).
fn test_id(test_case_id: Uuid, result: &TestResult) -> Uuid {
    runledger_insights::test_id(TestCaseId(test_case_id), &result.classname, &result.name).0
}

/// What "the same inputs" means for a run (docs/insights.md): the machine's OS and the run's
/// env overrides. (A test case's definition never changes once defined, so its id is its
/// definition.) Hashed to a UUID v5.
fn inputs_of(run: &TestRunRow) -> Uuid {
    let described = format!("{}\n{}", run.os.as_deref().unwrap_or(""), run.env);
    Uuid::new_v5(&Uuid::NAMESPACE_OID, described.as_bytes())
}

/// The run an event changes the context of, if any.
fn run_of(event: &Event) -> Option<Uuid> {
    match event {
        Event::RunRequested(e) => Some(e.run_id.0),
        Event::RunAssigned(e) => Some(e.run_id.0),
        Event::RunTestsReported(e) => Some(e.run_id.0),
        Event::RunFinished(e) if !e.tests.is_empty() => Some(e.run_id.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
