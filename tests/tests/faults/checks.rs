//! What must hold after the faults, read from the log itself (the test's own Postgres) and from
//! what the bus acknowledged.

use super::load::Sent;
use runledger_readmodel::ALL;
use runledger_store::EventStore;
use runledger_types::EventRecord;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// The whole log, in order.
pub async fn whole_log(store: &EventStore) -> Vec<EventRecord> {
    let mut log = Vec::new();
    loop {
        let after = log.last().map_or(0, |event: &EventRecord| event.position);
        let page = store.read_after(after, 5_000).await.expect("read the log");
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

fn run_id(event: &EventRecord) -> Option<Uuid> {
    event.data.get("run_id")?.as_str()?.parse().ok()
}

/// Each run's `run_finished`, by run; panics if a run ended twice.
pub fn ends(log: &[EventRecord]) -> HashMap<Uuid, &EventRecord> {
    let mut ends = HashMap::new();
    for event in log.iter().filter(|e| e.event_type == "run_finished") {
        let run = run_id(event).expect("run_finished names its run");
        if let Some(first) = ends.insert(run, event) {
            panic!(
                "run {run} ended twice: at {} and {}",
                first.position, event.position
            );
        }
    }
    ends
}

/// Every command the bus acked was handled once, accepted, and requested its run once; an
/// unacked one did so at most once; no run was requested twice.
pub async fn exactly_once(pool: &PgPool, log: &[EventRecord], sent: &[Sent]) {
    let handled: Vec<(Uuid, bool)> =
        sqlx::query_as("SELECT command_id, accepted FROM commands WHERE type = 'start_run'")
            .fetch_all(pool)
            .await
            .expect("read the commands table");
    let handled: HashMap<Uuid, bool> = handled.into_iter().collect();
    let mut requested: HashMap<Uuid, Vec<&EventRecord>> = HashMap::new();
    for event in log.iter().filter(|e| e.event_type == "run_requested") {
        let run = run_id(event).expect("run_requested names its run");
        requested.entry(run).or_default().push(event);
    }
    for (run, requests) in &requested {
        assert_eq!(requests.len(), 1, "run {run} was requested more than once");
    }
    for command in sent {
        let id = command.command_id.0;
        let requests = requested.get(&command.run_id).map_or(0, Vec::len);
        if command.acked {
            assert_eq!(
                handled.get(&id),
                Some(&true),
                "acked start_run {id} was not recorded as accepted"
            );
            assert_eq!(requests, 1, "acked start_run {id} requested no run");
        }
        if requests == 1 {
            let event = requested[&command.run_id][0];
            assert_eq!(
                event.command_id, command.command_id,
                "run {}",
                command.run_id
            );
        }
    }
}

/// Replays the leases: no venv is leased while another run holds it, each release is by its
/// holder, and at the end of the log no venv is held. Returns how many leases there were.
pub fn venv_leases(log: &[EventRecord]) -> usize {
    let mut holder: HashMap<&str, Option<Uuid>> = HashMap::new();
    let mut leases = 0;
    for event in log {
        let slot = || event.stream_id.as_str();
        match event.event_type.as_str() {
            "venv_leased" => {
                let held = holder.entry(slot()).or_default();
                assert!(
                    held.is_none(),
                    "{} leased to {:?} at {} while {held:?} held it",
                    slot(),
                    run_id(event),
                    event.position
                );
                *held = run_id(event);
                leases += 1;
            }
            "venv_released" => {
                let held = holder.entry(slot()).or_default();
                assert_eq!(
                    *held,
                    run_id(event),
                    "released by its holder at {}",
                    event.position
                );
                *held = None;
            }
            _ => {}
        }
    }
    let still: Vec<_> = holder.iter().filter(|(_, run)| run.is_some()).collect();
    assert!(still.is_empty(), "venvs still held at the end: {still:?}");
    leases
}

/// The output of `run`, attempt by attempt: each attempt's `run_output` chunks are numbered
/// consecutively from the attempt's first seq (1, then 2^32 + 1, …) in log order, none missing
/// or repeated. Returns, by attempt (from 1), the text and the log positions of its chunks.
pub fn output_of(log: &[EventRecord], run: Uuid) -> BTreeMap<u64, (String, Vec<i64>)> {
    let mut attempts: BTreeMap<u64, Vec<&EventRecord>> = BTreeMap::new();
    for chunk in log
        .iter()
        .filter(|e| e.event_type == "run_output" && run_id(e) == Some(run))
    {
        let seq = chunk.data["seq"].as_u64().expect("a chunk's seq");
        attempts.entry(seq >> 32).or_default().push(chunk);
    }
    attempts
        .into_iter()
        .map(|(attempt, chunks)| {
            let first = attempt << 32;
            let seqs: Vec<u64> = chunks
                .iter()
                .map(|e| e.data["seq"].as_u64().unwrap_or(0))
                .collect();
            let expected: Vec<u64> = (first + 1..=first + seqs.len() as u64).collect();
            assert_eq!(
                seqs,
                expected,
                "the output of run {run} (attempt {}) has a gap or a repeat",
                attempt + 1
            );
            let text = chunks
                .iter()
                .map(|e| e.data["text"].as_str().expect("a chunk's text"))
                .collect();
            (
                attempt + 1,
                (text, chunks.iter().map(|e| e.position).collect()),
            )
        })
        .collect()
}

/// The events of `run`, one a line, for failure messages.
pub fn story(log: &[EventRecord], run: Uuid) -> String {
    log.iter()
        .filter(|e| run_id(e) == Some(run))
        .map(|e| {
            format!(
                "{:>6} {:<22} {:<18} {}",
                e.position, e.event_type, e.actor, e.data
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many times `run` was assigned (its attempts).
pub fn attempts_of(log: &[EventRecord], run: Uuid) -> u64 {
    log.iter()
        .filter(|e| e.event_type == "run_assigned" && run_id(e) == Some(run))
        .count() as u64
}

/// Every read-model table, every row, as JSON in key order.
pub async fn dump_read_models(pool: &PgPool) -> BTreeMap<String, Value> {
    let mut tables = BTreeMap::new();
    for model in ALL {
        for table in model.tables() {
            let sql = table.contents_sql(&model.schema());
            let text: String = sqlx::query_scalar(&sql).fetch_one(pool).await.expect(&sql);
            let rows = serde_json::from_str(&text).expect("rows as JSON");
            tables.insert(format!("{}.{}", model.schema(), table.name), rows);
        }
    }
    tables
}
