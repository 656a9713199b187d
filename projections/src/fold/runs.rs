//! The `runs` read model: one row per run, its output in chunks, and the names runs carry.

use super::{Fact, json, keys_to_load};
use crate::error::ProjectionError;
use crate::table::{KeyedRow, RowCache, copy_text, upsert_rows};
use runledger_readmodel::rows::{NameKind, NameRow, OutputRow, RUNS_TABLES, RunRow};
use runledger_types::command::OutputStream;
use runledger_types::event::{RunAssigned, RunFinished, RunOutput, RunRequested};
use runledger_types::{Event, RunStatus};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

impl KeyedRow for RunRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.run_id
    }
}

/// Runs not yet finished stay cached between batches; past this many, the cache starts over.
const CACHE_CAPACITY: usize = 100_000;

/// How long a run waited or ran, seen as its events were projected (for the metrics).
#[derive(Debug, Clone, PartialEq)]
pub enum RunTiming {
    /// From `run_requested` to its first `run_assigned`.
    QueueWait(f64),
    /// From `run_started` to `run_finished`, with the final status.
    Duration {
        /// The final status.
        status: String,
        /// Seconds.
        seconds: f64,
    },
}

/// Folds run events into run rows and output chunks.
#[derive(Debug)]
pub struct RunsFold {
    runs: RowCache<RunRow>,
    output: Vec<OutputRow>,
    names: HashMap<(NameKind, Uuid), String>,
    new_names: Vec<NameRow>,
    /// Collected only when asked for (the live projector), taken after each batch.
    timings: Option<Vec<RunTiming>>,
}

impl Default for RunsFold {
    fn default() -> Self {
        Self {
            runs: RowCache::new(&RUNS_TABLES[0], CACHE_CAPACITY),
            output: Vec::new(),
            names: HashMap::new(),
            new_names: Vec::new(),
            timings: None,
        }
    }
}

impl RunsFold {
    /// From now on, collect the [`RunTiming`]s of the runs folded.
    pub fn collect_timings(&mut self) {
        self.timings.get_or_insert_with(Vec::new);
    }

    /// The timings collected since the last call.
    pub fn take_timings(&mut self) -> Vec<RunTiming> {
        self.timings
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Loads the names runs are stamped with (all of them: there are few).
    pub async fn load_state(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        let sql = format!("SELECT row_to_json(t)::text FROM {schema}.names t");
        let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&mut **tx).await?;
        self.names.clear();
        for text in rows {
            let row: NameRow = serde_json::from_str(&text)
                .map_err(|err| ProjectionError::Corrupt(format!("{schema}.names: {err}")))?;
            self.names.insert((row.kind, row.id), row.name);
        }
        Ok(())
    }

    /// Loads the run rows `facts` touch.
    pub async fn prepare(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        let keys = keys_to_load(facts, |event| {
            run_of(event).map(|run_id| (run_id, matches!(event, Event::RunRequested(_))))
        });
        self.runs.load(tx, schema, keys).await
    }

    /// Folds one event.
    pub fn apply(&mut self, fact: &Fact) {
        match &fact.event {
            Event::RunRequested(e) => self.requested(fact, e),
            Event::RunQueued(e) => self.touch(fact, e.run_id.0, |run| {
                run.status = RunStatus::Queued;
            }),
            Event::RunAssigned(e) => self.assigned(fact, e),
            Event::RunStarted(e) => self.touch(fact, e.run_id.0, |run| {
                run.status = RunStatus::Running;
                run.started_at = Some(fact.recorded_at);
                run.executor = Some(e.executor.clone());
            }),
            Event::RunOutput(e) => self.output(fact, e),
            Event::RunCancelRequested(e) => self.touch(fact, e.run_id.0, |run| {
                run.cancel_requested = true;
                run.cancel_reason.clone_from(&e.reason);
            }),
            Event::RunFinished(e) => self.finished(fact, e),
            Event::JenkinsBuildStarted(e) => self.touch(fact, e.run_id.0, |run| {
                run.jenkins_build_number = Some(i64::try_from(e.number).unwrap_or(i64::MAX));
                run.jenkins_build_url = Some(e.url.as_str().to_owned());
            }),
            Event::MachineRegistered(e) => {
                self.name(NameKind::Machine, e.machine_id.0, e.name.as_str())
            }
            Event::MachineUpdated(e) => {
                if let Some(name) = &e.name {
                    self.name(NameKind::Machine, e.machine_id.0, name.as_str());
                }
            }
            Event::TestCaseDefined(e) => {
                self.name(NameKind::TestCase, e.test_case_id.0, e.name.as_str())
            }
            Event::VenvAdded(e) => self.name(NameKind::Venv, e.venv_id.0, e.name.as_str()),
            _ => {}
        }
    }

    /// Writes the batch's changes.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        self.runs.flush(tx, schema).await?;
        let mut text = String::with_capacity(self.output.len() * 120);
        for chunk in &self.output {
            encode_output(chunk, &mut text);
        }
        copy_text(tx, &RUNS_TABLES[1], schema, text).await?;
        upsert_rows(tx, &RUNS_TABLES[2], schema, &self.new_names).await?;
        Ok(())
    }

    /// After commit: keep only unfinished runs cached.
    pub fn committed(&mut self) {
        self.output.clear();
        self.new_names.clear();
        self.runs.committed(|run| run.finished_at.is_none());
    }

    /// Forgets cached rows and unwritten changes.
    pub fn clear(&mut self) {
        self.output.clear();
        self.new_names.clear();
        self.runs.clear();
        self.names.clear();
    }

    /// The cached row of `run_id` (for tests and inspection).
    pub fn run(&self, run_id: Uuid) -> Option<&RunRow> {
        self.runs.get(&run_id)
    }

    /// Output chunks folded since the last commit.
    pub fn pending_output(&self) -> &[OutputRow] {
        &self.output
    }

    fn name_of(&self, kind: NameKind, id: Uuid) -> Option<String> {
        self.names.get(&(kind, id)).cloned()
    }

    fn name(&mut self, kind: NameKind, id: Uuid, name: &str) {
        self.names.insert((kind, id), name.to_owned());
        self.new_names
            .retain(|row| (row.kind, row.id) != (kind, id));
        self.new_names.push(NameRow {
            kind,
            id,
            name: name.to_owned(),
        });
    }

    fn touch(&mut self, fact: &Fact, run_id: Uuid, change: impl FnOnce(&mut RunRow)) {
        let found = self.runs.update(&run_id, |run| {
            change(run);
            run.last_position = fact.position;
            run.updated_at = fact.recorded_at;
        });
        if !found {
            tracing::warn!(%run_id, position = fact.position, "event for a run the read model does not know; skipped");
        }
    }

    fn requested(&mut self, fact: &Fact, e: &RunRequested) {
        self.runs.create(RunRow {
            run_id: e.run_id.0,
            status: RunStatus::Queued,
            requested_by: e.user.as_str().to_owned(),
            test_case_id: e.test_case_id.0,
            test_case_name: self.name_of(NameKind::TestCase, e.test_case_id.0),
            machine_id: None,
            machine_name: None,
            venv_id: None,
            venv_name: None,
            requested_machine_id: e.machine_id.map(|id| id.0),
            requested_venv_id: e.venv_id.map(|id| id.0),
            labels: e
                .labels
                .iter()
                .map(|label| label.as_str().to_owned())
                .collect(),
            env: json(&e.env),
            attempt: 0,
            executor: None,
            cancel_requested: false,
            cancel_reason: None,
            queued_at: fact.recorded_at,
            assigned_at: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            exit_code: None,
            summary: None,
            reason: None,
            error_code: None,
            output_bytes: 0,
            output_chunks: 0,
            last_position: fact.position,
            updated_at: fact.recorded_at,
            jenkins_build_number: None,
            jenkins_build_url: None,
            group_id: e.group.as_ref().map(|g| g.group_id.0),
            shard: e
                .group
                .as_ref()
                .map(|g| i32::try_from(g.shard).unwrap_or(i32::MAX)),
        });
    }

    fn assigned(&mut self, fact: &Fact, e: &RunAssigned) {
        let machine_name = e
            .machine_id
            .and_then(|id| self.name_of(NameKind::Machine, id.0));
        let venv_name = e.venv_id.and_then(|id| self.name_of(NameKind::Venv, id.0));
        let mut waited = None;
        self.touch(fact, e.run_id.0, |run| {
            if e.attempt <= 1 {
                waited = Some(seconds(fact.recorded_at - run.queued_at));
            }
            run.status = RunStatus::Assigned;
            run.machine_id = e.machine_id.map(|id| id.0);
            run.machine_name = machine_name;
            run.venv_id = e.venv_id.map(|id| id.0);
            run.venv_name = venv_name;
            run.attempt = i32::try_from(e.attempt).unwrap_or(i32::MAX);
            run.assigned_at = Some(fact.recorded_at);
            run.executor = None;
            run.cancel_requested = false;
        });
        if let (Some(timings), Some(waited)) = (&mut self.timings, waited) {
            timings.push(RunTiming::QueueWait(waited));
        }
    }

    fn output(&mut self, fact: &Fact, e: &RunOutput) {
        let mut offset = None;
        self.touch(fact, e.run_id.0, |run| {
            offset = Some(run.output_bytes);
            run.output_bytes += e.text.len() as i64;
            run.output_chunks += 1;
        });
        let Some(byte_offset) = offset else { return };
        self.output.push(OutputRow {
            run_id: e.run_id.0,
            seq: i64::try_from(e.seq).unwrap_or(i64::MAX),
            stream: match e.stream {
                OutputStream::Stdout => "stdout",
                OutputStream::Stderr => "stderr",
            }
            .into(),
            byte_offset,
            bytes: e.text.len() as i64,
            position: fact.position,
            recorded_at: fact.recorded_at,
        });
    }

    fn finished(&mut self, fact: &Fact, e: &RunFinished) {
        let mut ran = None;
        self.touch(fact, e.run_id.0, |run| {
            run.status = e.status;
            run.finished_at = Some(fact.recorded_at);
            run.duration_ms = run
                .started_at
                .map(|started| (fact.recorded_at - started).num_milliseconds());
            ran = run
                .started_at
                .map(|started| seconds(fact.recorded_at - started));
            run.exit_code = e.exit_code;
            run.summary = e.summary.as_ref().map(json);
            run.reason.clone_from(&e.reason);
            run.error_code.clone_from(&e.error_code);
        });
        if let (Some(timings), Some(seconds)) = (&mut self.timings, ran) {
            timings.push(RunTiming::Duration {
                status: e.status.as_str().to_owned(),
                seconds,
            });
        }
    }
}

/// A span of time in seconds (negative spans, from clock steps between processes, count as 0).
fn seconds(span: chrono::TimeDelta) -> f64 {
    (span.num_milliseconds().max(0) as f64) / 1000.0
}

/// An output chunk as a line of COPY text, written by hand: it is the most frequent row by far
/// (a unit test checks it against the generic encoder).
pub(crate) fn encode_output(chunk: &OutputRow, out: &mut String) {
    use std::fmt::Write;
    let recorded_at = chunk
        .recorded_at
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{recorded_at}",
        chunk.run_id, chunk.seq, chunk.stream, chunk.byte_offset, chunk.bytes, chunk.position
    );
}

/// The run an event changes the row of, if any.
fn run_of(event: &Event) -> Option<Uuid> {
    match event {
        Event::RunRequested(e) => Some(e.run_id.0),
        Event::RunQueued(e) => Some(e.run_id.0),
        Event::RunAssigned(e) => Some(e.run_id.0),
        Event::RunStarted(e) => Some(e.run_id.0),
        Event::RunOutput(e) => Some(e.run_id.0),
        Event::RunCancelRequested(e) => Some(e.run_id.0),
        Event::RunFinished(e) => Some(e.run_id.0),
        Event::JenkinsBuildStarted(e) => Some(e.run_id.0),
        _ => None,
    }
}
