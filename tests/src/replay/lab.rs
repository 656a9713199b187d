//! The lab the runs use (registered at the start of the log) and the runs in flight.

use super::content::{self, USERS};
use super::writer::{Command, LogWriter};
use runledger_types::event::VenvProvisioned;
use runledger_types::{Event, MachineId, Os, RunId, TestCaseId, VenvId};
use std::collections::VecDeque;

/// The shape of the simulated lab.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Machines (each with 3–5 venvs, 4 on average).
    pub machines: usize,
    /// Test cases.
    pub test_cases: usize,
    /// Runs requested and not finished, at most. About half the venv count: machines are
    /// picked with a skew, so the busiest ones still queue (≈ 1 run in 5 waits).
    pub in_flight: usize,
    /// Executor processes; machine `i` belongs to executor `i % executors`.
    pub executors: usize,
    /// Seed of the random choices.
    pub seed: u64,
}

/// A run requested and not finished.
#[derive(Debug)]
pub(super) struct Run {
    pub id: RunId,
    /// Index of its machine.
    pub machine: usize,
    pub requester: &'static str,
    pub venv: Option<VenvId>,
    /// The `run_assigned` event, which the executor reacts to.
    pub assigned: Option<uuid::Uuid>,
    pub started: bool,
    /// Output chunks still to print.
    pub chunks_left: u32,
    /// The last output chunk's number.
    pub seq: u64,
    /// Why cancellation was requested, once it was.
    pub cancel: Option<&'static str>,
}

/// A registered machine, its free venvs and the runs waiting for one.
#[derive(Debug)]
pub(super) struct Machine {
    pub id: MachineId,
    pub free: Vec<VenvId>,
    pub queue: VecDeque<Run>,
}

/// What [`register`] created.
#[derive(Debug)]
pub(super) struct Lab {
    pub machines: Vec<Machine>,
    pub test_cases: Vec<TestCaseId>,
}

/// Registers users, machines with 3–5 venvs each (added, then provisioned by their executor)
/// and test cases. `executors` are `(name, actor)` pairs.
pub(super) fn register(
    log: &mut LogWriter,
    settings: &SimSettings,
    executors: &[(String, String)],
) -> anyhow::Result<Lab> {
    for (index, (name, role)) in USERS.into_iter().enumerate() {
        let actor = if index == 0 { "bootstrap" } else { "admin" };
        log.append(
            &Command::new(actor),
            &Event::UserRegistered(content::user(name, role)?),
        )?;
    }
    let mut machines = Vec::new();
    let mut venvs = Vec::new();
    for index in 0..settings.machines {
        let id = MachineId::new();
        let machine = content::machine(index, id)?;
        let windows = machine.os == Os::Windows;
        log.append(&Command::new("admin"), &Event::MachineRegistered(machine))?;
        let mut free = Vec::new();
        for venv_index in 0..3 + index % 3 {
            let venv = content::venv(id, windows, venv_index)?;
            free.push(venv.venv_id);
            log.append(&Command::new("admin"), &Event::VenvAdded(venv))?;
        }
        venvs.extend(free.iter().map(|venv| (*venv, index)));
        machines.push(Machine {
            id,
            free,
            queue: VecDeque::new(),
        });
    }
    for (venv_id, machine) in venvs {
        let actor = &executors[machine % executors.len()].1;
        let provisioned = VenvProvisioned {
            venv_id,
            python_version: Some("3.12.7".into()),
        };
        log.append(&Command::new(actor), &Event::VenvProvisioned(provisioned))?;
    }
    let mut test_cases = Vec::new();
    for index in 0..settings.test_cases {
        let defined = content::test_case(index)?;
        test_cases.push(defined.test_case_id);
        log.append(&Command::new("admin"), &Event::TestCaseDefined(defined))?;
    }
    Ok(Lab {
        machines,
        test_cases,
    })
}
