//! The `tests` read model: every per-test result of every attempt, placed on its run (test
//! case, attempt, machine, venv, env), and per test the figures of [`figures`].

mod figures;

use super::{Fact, json, wire_name};
use crate::copy::escape;
use crate::error::ProjectionError;
use crate::table::{KeyedRow, RowCache, copy_text, upsert_rows};
use runledger_insights::TestKey;
use runledger_readmodel::rows::{
    QuarantineRow, RECENT, RecentResult, ResultRow, TESTS_TABLES, TestMachineRow, TestRow,
    TestRunRow,
};
use runledger_types::command::{TestOutcome, TestResult};
use runledger_types::event::{RunAssigned, RunRequested};
use runledger_types::{Event, RunId, TestCaseId};
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

impl KeyedRow for TestRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.test_id
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

/// Tests and runs kept cached between batches; past this many each cache starts over.
const CACHE_CAPACITY: usize = 100_000;

/// Folds run and machine events into test results and per-test figures.
#[derive(Debug)]
pub struct TestsFold {
    tests: RowCache<TestRow>,
    runs: RowCache<TestRunRow>,
    quarantines: RowCache<QuarantineRow>,
    results: Vec<ResultRow>,
    /// Tests given results since the last flush: their figures are computed then, once.
    touched: HashSet<Uuid>,
    machines: HashMap<Uuid, TestMachineRow>,
    new_machines: Vec<TestMachineRow>,
}

impl Default for TestsFold {
    fn default() -> Self {
        Self {
            tests: RowCache::new(&TESTS_TABLES[0], CACHE_CAPACITY),
            runs: RowCache::new(&TESTS_TABLES[2], CACHE_CAPACITY),
            quarantines: RowCache::new(&TESTS_TABLES[3], CACHE_CAPACITY),
            results: Vec::new(),
            touched: HashSet::new(),
            machines: HashMap::new(),
            new_machines: Vec::new(),
        }
    }
}

impl TestsFold {
    /// Loads the machines (all of them: there are few).
    pub async fn load_state(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
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
                tests.extend(results.iter().map(|result| test_id(case, result)));
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
        let mut text = String::with_capacity(self.results.len() * 160);
        for row in &self.results {
            encode_result(row, &mut text);
        }
        copy_text(tx, &TESTS_TABLES[1], schema, text).await?;
        self.runs.flush(tx, schema).await?;
        self.quarantines.flush(tx, schema).await?;
        upsert_rows(tx, &TESTS_TABLES[4], schema, &self.new_machines).await?;
        Ok(())
    }

    /// Computes the figures of the tests given results since the last flush.
    fn compute_figures(&mut self) {
        for test_id in std::mem::take(&mut self.touched) {
            self.tests.update(&test_id, |test| {
                let recent = std::mem::take(&mut test.recent);
                figures::compute(test, &recent);
                test.recent = recent;
            });
        }
    }

    /// After commit.
    pub fn committed(&mut self) {
        self.results.clear();
        self.new_machines.clear();
        self.tests.committed(|_| true);
        self.runs.committed(|_| true);
        self.quarantines.committed(|_| true);
    }

    /// Forgets cached rows and unwritten changes.
    pub fn clear(&mut self) {
        self.results.clear();
        self.touched.clear();
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

    /// Results folded since the last commit.
    pub fn pending_results(&self) -> &[ResultRow] {
        &self.results
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
        let inputs = inputs_of(&run);
        for (ordinal, result) in results.iter().enumerate() {
            let test_id = test_id(run.test_case_id, result);
            self.results.push(ResultRow {
                position: fact.position,
                ordinal: i32::try_from(ordinal).unwrap_or(i32::MAX),
                test_id,
                run_id: run.run_id,
                attempt: run.attempt,
                status: outcome_name(result.status).to_owned(),
                duration_ms: i64::try_from(result.duration_ms).unwrap_or(i64::MAX),
                message: result.message.clone(),
                machine_id: run.machine_id,
                venv_id: run.venv_id,
                finished_at: fact.recorded_at,
            });
            let recent = RecentResult {
                run_id: run.run_id,
                attempt: u32::try_from(run.attempt).unwrap_or(0),
                rerun_of: run.rerun_of,
                status: result.status,
                duration_ms: result.duration_ms,
                inputs: inputs.clone(),
            };
            let seen = Seen {
                fact,
                result,
                recent,
            };
            self.touched.insert(test_id);
            if !self.tests.update(&test_id, |test| seen.apply(test)) {
                let mut test = seen.first(test_id, run.test_case_id);
                seen.apply(&mut test);
                self.tests.put(test);
            }
        }
    }
}

/// One result as it changes its test's row.
struct Seen<'a> {
    fact: &'a Fact,
    result: &'a TestResult,
    recent: RecentResult,
}

impl Seen<'_> {
    /// The row of a test seen for the first time, before this result is applied.
    fn first(&self, test_id: Uuid, test_case_id: Uuid) -> TestRow {
        let status = outcome_name(self.result.status);
        TestRow {
            test_id,
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
            flips: serde_json::Value::Array(Vec::new()),
            recent: Vec::new(),
            last_position: self.fact.position,
        }
    }

    fn apply(&self, test: &mut TestRow) {
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
        let over = test.recent.len().saturating_sub(RECENT);
        test.recent.drain(..over);
    }
}

/// A result as a line of COPY text, written by hand: a rebuild writes one per result, by far
/// its most frequent row (a unit test checks it against the generic encoder).
pub(crate) fn encode_result(row: &ResultRow, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t",
        row.position,
        row.ordinal,
        row.test_id,
        row.run_id,
        row.attempt,
        row.status,
        row.duration_ms
    );
    match &row.message {
        Some(message) => escape(message, out),
        None => out.push_str("\\N"),
    }
    for id in [row.machine_id, row.venv_id] {
        out.push('\t');
        match id {
            Some(id) => {
                let _ = write!(out, "{id}");
            }
            None => out.push_str("\\N"),
        }
    }
    let finished_at = row
        .finished_at
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let _ = writeln!(out, "\t{finished_at}");
}

/// A test outcome's wire name, without going through serde.
fn outcome_name(outcome: TestOutcome) -> &'static str {
    match outcome {
        TestOutcome::Passed => "passed",
        TestOutcome::Failed => "failed",
        TestOutcome::Skipped => "skipped",
        TestOutcome::Error => "error",
    }
}

/// A result's test id (runledger-insights).
fn test_id(test_case_id: Uuid, result: &TestResult) -> Uuid {
    TestKey::new(TestCaseId(test_case_id), &result.classname, &result.name)
        .id()
        .0
}

/// What "the same inputs" means for a run (docs/insights.md): the machine's OS and the run's
/// env overrides. (A test case's definition never changes once defined, so its id is its
/// definition.) Hashed to a short, stable name.
fn inputs_of(run: &TestRunRow) -> String {
    let described = format!("{}\n{}", run.os.as_deref().unwrap_or(""), run.env);
    Uuid::new_v5(&Uuid::NAMESPACE_OID, described.as_bytes())
        .simple()
        .to_string()
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
