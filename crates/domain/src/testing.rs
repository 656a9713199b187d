//! Given/when/then helpers for the domain's tests, in the style of cqrs-es:
//! `given(&events).when(actor, command).then_expect(&events)` or `.then_reject(code)`.
//! `given` folds its events with [`evolve`]; fixtures below build common events and commands.

use crate::{Lab, decide, evolve};
use chrono::{DateTime, TimeDelta, Utc};
use runledger_types::command::StartRun;
use runledger_types::event::{
    MachineRegistered, RunAssigned, RunFinished, RunQueued, RunRequested, RunStarted,
    TestCaseDefined, UserRegistered, VenvAdded, VenvLeased, VenvProvisioned, VenvReleased,
};
use runledger_types::{
    Actor, Command, EnvName, Event, Host, Line, MachineId, MachineName, Os, PasswordHash, Port,
    Rejection, RejectionCode, RemotePath, RemoteUser, Role, RunId, RunStatus, TestCaseId, Text,
    Username, VenvId, VenvName,
};
use uuid::Uuid;

/// An admin user.
pub const ADMIN: &str = "ada";
/// A member user.
pub const MEMBER: &str = "mia";
/// Another member user.
pub const OTHER: &str = "otto";
/// A trusted system that is not a user.
pub const SYSTEM: &str = "jenkins";
/// An executor.
pub const EXEC: &str = "executor:e1";
/// Another executor.
pub const EXEC2: &str = "executor:e2";

/// The time decisions are taken at unless a test says otherwise.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default()
}

/// `now()` moved by `seconds` (negative: earlier).
pub fn at(seconds: i64) -> DateTime<Utc> {
    now() + TimeDelta::seconds(seconds)
}

/// The state after `events`.
pub fn given(events: &[Event]) -> Given {
    let mut lab = Lab::new();
    for event in events {
        evolve(&mut lab, event);
    }
    Given { lab }
}

/// A folded state, waiting for a command.
pub struct Given {
    /// The state.
    pub lab: Lab,
}

impl Given {
    /// Decides `command` asked by `actor`, at `now()`.
    pub fn when(self, actor: &str, command: Command) -> Then {
        self.when_at(now(), actor, command)
    }

    /// Decides `command` asked by `actor`, at `time`.
    pub fn when_at(self, time: DateTime<Utc>, actor: &str, command: Command) -> Then {
        let result = decide(&self.lab, &actor_of(actor), &command, time);
        Then {
            lab: self.lab,
            result,
        }
    }
}

/// A decision, waiting for its check.
pub struct Then {
    lab: Lab,
    /// What `decide` answered.
    pub result: Result<Vec<Event>, Rejection>,
}

impl Then {
    /// Asserts the exact events; returns the state after them.
    #[track_caller]
    pub fn then_expect(self, expected: &[Event]) -> Lab {
        let events = self.events();
        assert_eq!(events.0, expected);
        events.1
    }

    /// Asserts the command was rejected with `code`; returns the rejection.
    #[track_caller]
    pub fn then_reject(self, code: RejectionCode) -> Rejection {
        match self.result {
            Err(rejection) => {
                assert_eq!(rejection.code, code, "{}", rejection.message);
                rejection
            }
            Ok(events) => panic!("expected {code}, got events {events:#?}"),
        }
    }

    /// The accepted events and the state after them.
    #[track_caller]
    pub fn events(self) -> (Vec<Event>, Lab) {
        let events = match self.result {
            Ok(events) => events,
            Err(rejection) => panic!("rejected: {rejection:?}"),
        };
        let mut lab = self.lab;
        for event in &events {
            evolve(&mut lab, event);
        }
        (events, lab)
    }
}

/// Decides at `now()` and, when accepted, evolves `lab` with the events.
pub fn apply(lab: &mut Lab, actor: &str, command: &Command) -> Result<Vec<Event>, Rejection> {
    apply_at(lab, now(), actor, command)
}

/// Decides at `time` and, when accepted, evolves `lab` with the events.
pub fn apply_at(
    lab: &mut Lab,
    time: DateTime<Utc>,
    actor: &str,
    command: &Command,
) -> Result<Vec<Event>, Rejection> {
    let events = decide(lab, &actor_of(actor), command, time)?;
    for event in &events {
        evolve(lab, event);
    }
    Ok(events)
}

/// An actor.
pub fn actor_of(name: &str) -> Actor {
    Actor::parse(name).expect("valid actor")
}

/// Machine id number `n`.
pub fn m(n: u128) -> MachineId {
    MachineId(Uuid::from_u128(0x1000 + n))
}

/// Venv id number `n`.
pub fn v(n: u128) -> VenvId {
    VenvId(Uuid::from_u128(0x2000 + n))
}

/// Run id number `n`.
pub fn r(n: u128) -> RunId {
    RunId(Uuid::from_u128(0x3000 + n))
}

/// Test case id number `n`.
pub fn tc(n: u128) -> TestCaseId {
    TestCaseId(Uuid::from_u128(0x4000 + n))
}

/// `user_registered`.
pub fn user(name: &str, role: Role) -> Event {
    Event::UserRegistered(UserRegistered {
        username: Username::parse(name).expect("username"),
        role,
        password_hash: PasswordHash("$argon2id$test".into()),
    })
}

/// The admin, the member and the other member.
pub fn users() -> Vec<Event> {
    vec![
        user(ADMIN, Role::Admin),
        user(MEMBER, Role::Member),
        user(OTHER, Role::Member),
    ]
}

/// `machine_registered` for machine `id`, owned by `owner`, with `labels`.
pub fn machine(id: MachineId, owner: &str, tags: &[&str]) -> Event {
    Event::MachineRegistered(MachineRegistered {
        machine_id: id,
        name: MachineName::parse("lab box").expect("name"),
        host: Host::parse("10.0.0.1").expect("host"),
        port: Port::SSH,
        os: Os::Linux,
        username: RemoteUser::parse("ubuntu").expect("user"),
        owner: actor_of(owner),
        password: None,
        private_key: None,
        host_key: None,
        labels: labels(tags),
    })
}

/// Labels from strings.
pub fn labels(names: &[&str]) -> std::collections::BTreeSet<runledger_types::Label> {
    names
        .iter()
        .map(|name| runledger_types::Label::parse(*name).expect("label"))
        .collect()
}

/// `venv_added` for venv `id` named `name` on machine `machine_id`.
pub fn venv_added(id: VenvId, machine_id: MachineId, name: &str) -> Event {
    Event::VenvAdded(VenvAdded {
        venv_id: id,
        machine_id,
        name: VenvName::parse(name).expect("venv name"),
        path: RemotePath::parse(format!("~/.runledger/venvs/{name}")).expect("path"),
        python: Line::parse("python3").expect("line"),
        requirements: Vec::new(),
    })
}

/// `venv_provisioned`.
pub fn provisioned(id: VenvId) -> Event {
    Event::VenvProvisioned(VenvProvisioned {
        venv_id: id,
        python_version: None,
    })
}

/// A provisioned (free) venv `id` on `machine_id`.
pub fn free_venv(id: VenvId, machine_id: MachineId) -> Vec<Event> {
    vec![
        venv_added(id, machine_id, &format!("venv-{}", id.0.as_u128() & 0xfff)),
        provisioned(id),
    ]
}

/// `test_case_defined` for `id`.
pub fn test_case(id: TestCaseId) -> Event {
    Event::TestCaseDefined(TestCaseDefined {
        test_case_id: id,
        name: MachineName::parse("unit tests").expect("name"),
        description: String::new(),
        command: Some(Text::parse("pytest -q").expect("text")),
        jenkins: None,
        files: Vec::new(),
        env: Default::default(),
        env_overridable: [EnvName::parse("X").expect("env")].into(),
        timeout_s: 3600,
        junit_xml: None,
        max_output_bytes: runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES,
        retries: 0,
    })
}

/// The users and test case `tc(1)`.
pub fn base() -> Vec<Event> {
    let mut events = users();
    events.push(test_case(tc(1)));
    events
}

/// `base()` plus machine `m(1)` (owner MEMBER, labels `linux`) with the free venv `v(1)`.
pub fn world() -> Vec<Event> {
    let mut events = base();
    events.push(machine(m(1), MEMBER, &["linux"]));
    events.extend(free_venv(v(1), m(1)));
    events
}

/// A `start_run` payload for run `run_id` of `tc(1)` with no selector.
pub fn start(run_id: RunId) -> StartRun {
    StartRun {
        run_id,
        test_case_id: tc(1),
        machine_id: None,
        labels: Default::default(),
        venv_id: None,
        env: Default::default(),
        rerun_of: None,
        only: None,
        tests: Vec::new(),
    }
}

/// The `run_requested` that `start(run_id)` by `user` decides.
pub fn requested(run_id: RunId, user: &str) -> Event {
    Event::RunRequested(RunRequested {
        run_id,
        test_case_id: tc(1),
        user: actor_of(user),
        machine_id: None,
        labels: Default::default(),
        venv_id: None,
        env: Default::default(),
        rerun_of: None,
        tests: Vec::new(),
        python: None,
        group: None,
    })
}

/// `run_queued` with `reason`.
pub fn queued(run_id: RunId, reason: &str) -> Event {
    Event::RunQueued(RunQueued {
        run_id,
        reason: reason.into(),
    })
}

/// `venv_leased` + `run_assigned` (attempt 1).
pub fn assigned(run_id: RunId, venv_id: VenvId, machine_id: MachineId) -> [Event; 2] {
    [
        Event::VenvLeased(VenvLeased { venv_id, run_id }),
        Event::RunAssigned(RunAssigned {
            run_id,
            venv_id: Some(venv_id),
            machine_id: Some(machine_id),
            attempt: 1,
        }),
    ]
}

/// `run_started` by executor `executor` (the name, without `executor:`).
pub fn started(run_id: RunId, executor: &str) -> Event {
    Event::RunStarted(RunStarted {
        run_id,
        executor: executor.into(),
    })
}

/// `run_finished` with `status` and nothing else.
pub fn finished(run_id: RunId, status: RunStatus, reason: Option<&str>) -> Event {
    Event::RunFinished(RunFinished {
        run_id,
        status,
        exit_code: None,
        summary: None,
        reason: reason.map(Into::into),
        error_code: None,
        tests: Vec::new(),
    })
}

/// `venv_released`.
pub fn released(venv_id: VenvId, run_id: RunId) -> Event {
    Event::VenvReleased(VenvReleased { venv_id, run_id })
}

/// Concatenates event lists.
pub fn all<const N: usize>(parts: [Vec<Event>; N]) -> Vec<Event> {
    parts.concat()
}
