//! A test database of its own with a log appended event by event, at chosen times, and the
//! events of a small lab: one machine, one venv, one test case, one run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use runledger_store::{AppendBatch, CommandRecord, EventStore};
use runledger_test_support::TestDb;
use runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES;
use runledger_types::event::{
    ExecutorHeartbeat, MachineRegistered, RunAssigned, RunFinished, RunRequested, RunStarted,
    TestCaseDefined, VenvAdded, VenvLeased, VenvProvisioned, VenvReleased,
};
use runledger_types::{
    Actor, CommandId, Event, EventId, Host, Line, MachineId, MachineName, NewEvent, Os, Port,
    RemotePath, RemoteUser, RunId, RunStatus, TestCaseId, Text, VenvId, VenvName,
};
use std::collections::HashMap;
use uuid::Uuid;

pub const MACHINE: MachineId = MachineId(Uuid::from_u128(1));
pub const VENV: VenvId = VenvId(Uuid::from_u128(2));
pub const TEST_CASE: TestCaseId = TestCaseId(Uuid::from_u128(3));
pub const RUN: RunId = RunId(Uuid::from_u128(4));

/// The `n`th second of a history long past (whole seconds: Postgres keeps microseconds).
pub fn second(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time") + TimeDelta::seconds(n)
}

/// An event log in a database of its own.
pub struct Log {
    pub store: EventStore,
    db: TestDb,
    versions: HashMap<String, i64>,
}

impl Log {
    pub async fn create() -> Self {
        let db = TestDb::create().await;
        Self {
            store: EventStore::new(db.pool.clone()),
            db,
            versions: HashMap::new(),
        }
    }

    /// Appends `events` as one command's, all recorded at `at`; returns the last position.
    pub async fn append(&mut self, events: Vec<Event>, at: DateTime<Utc>) -> i64 {
        let command_id = CommandId::new();
        let events: Vec<NewEvent> = events
            .into_iter()
            .map(|event| self.new_event(event, command_id, at))
            .collect();
        let commands = vec![CommandRecord {
            command_id,
            command_type: "test".into(),
            actor: "test".into(),
            events: 0..events.len(),
            rejection: None,
        }];
        let batch = AppendBatch {
            expected_head: None,
            events,
            commands,
        };
        let appended = self.store.append(&batch).await.expect("appends");
        appended.events.last().expect("one event or more").position
    }

    fn new_event(&mut self, event: Event, command_id: CommandId, at: DateTime<Utc>) -> NewEvent {
        let stream_id = event.stream_id();
        let version = self
            .versions
            .entry(stream_id.as_str().to_owned())
            .or_insert(0);
        *version += 1;
        NewEvent {
            event_id: EventId::new(),
            stream_id,
            stream_version: *version,
            event,
            recorded_at: at,
            actor: Actor::parse("test").expect("actor"),
            command_id,
            correlation_id: None,
            causation_id: None,
        }
    }

    pub async fn cleanup(self) {
        self.db.cleanup().await;
    }
}

/// The run's life, one event at a time: machine, venv added and provisioned, test case, run
/// requested, venv leased, run assigned, started and passed, venv released (positions 1–10).
pub fn a_run_from_start_to_end() -> Vec<Event> {
    vec![
        machine(),
        Event::VenvAdded(VenvAdded {
            venv_id: VENV,
            machine_id: MACHINE,
            name: VenvName::parse("py3").expect("venv"),
            path: RemotePath::parse("~/venvs/py3").expect("path"),
            python: Line::parse("python3").expect("python"),
            requirements: Vec::new(),
        }),
        Event::VenvProvisioned(VenvProvisioned {
            venv_id: VENV,
            python_version: None,
        }),
        test_case(),
        Event::RunRequested(RunRequested {
            run_id: RUN,
            test_case_id: TEST_CASE,
            user: Actor::parse("ada").expect("actor"),
            machine_id: None,
            labels: Default::default(),
            venv_id: Some(VENV),
            env: Default::default(),
            rerun_of: None,
            tests: Vec::new(),
            python: None,
            group: None,
        }),
        Event::VenvLeased(VenvLeased {
            venv_id: VENV,
            run_id: RUN,
        }),
        Event::RunAssigned(RunAssigned {
            run_id: RUN,
            venv_id: Some(VENV),
            machine_id: Some(MACHINE),
            attempt: 1,
        }),
        Event::RunStarted(RunStarted {
            run_id: RUN,
            executor: "e1".into(),
        }),
        Event::RunFinished(RunFinished {
            run_id: RUN,
            status: RunStatus::Passed,
            exit_code: Some(0),
            summary: None,
            reason: None,
            error_code: None,
            tests: Vec::new(),
        }),
        Event::VenvReleased(VenvReleased {
            venv_id: VENV,
            run_id: RUN,
        }),
    ]
}

pub fn heartbeat() -> Event {
    Event::ExecutorHeartbeat(ExecutorHeartbeat {
        executor: "e1".into(),
        run_ids: Vec::new(),
    })
}

fn machine() -> Event {
    Event::MachineRegistered(MachineRegistered {
        machine_id: MACHINE,
        name: MachineName::parse("box").expect("name"),
        host: Host::parse("10.0.0.5").expect("host"),
        port: Port::parse(22).expect("port"),
        os: Os::Linux,
        username: RemoteUser::parse("lab").expect("user"),
        owner: Actor::parse("ada").expect("actor"),
        password: None,
        private_key: None,
        host_key: None,
        labels: Default::default(),
    })
}

fn test_case() -> Event {
    Event::TestCaseDefined(TestCaseDefined {
        test_case_id: TEST_CASE,
        name: MachineName::parse("suite").expect("name"),
        description: String::new(),
        command: Some(Text::parse("pytest -q").expect("command")),
        jenkins: None,
        files: Vec::new(),
        env: Default::default(),
        env_overridable: Default::default(),
        timeout_s: 60,
        junit_xml: None,
        max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        retries: 0,
    })
}
