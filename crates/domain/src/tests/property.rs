//! A property-style test: after any deterministic pseudo-random sequence of commands, no venv is
//! leased by two runs, and no free venv has a queued run that could use it.

use crate::scheduling::oldest_queued_for;
use crate::testing::*;
use crate::{Lab, RunPhase, VenvStatus, decide, evolve};
use runledger_types::command::{
    AddVenv, CancelRun, OutputStream, RemoveVenv, ReportRunFinished, ReportRunOutput,
    ReportRunStarted, ReportVenvProvisioned, ReportVenvProvisioningFailed, RetireMachine, StartRun,
    UpdateMachine,
};
use runledger_types::{Command, Event, Line, RunId, RunStatus, VenvName};

/// xorshift64*: small, deterministic, good enough to shuffle commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `1..=n` (1 when `n` is 0).
    fn id(&mut self, n: u128) -> u128 {
        1 + u128::from(self.next()) % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> Vec<&'a str> {
        items
            .iter()
            .copied()
            .filter(|_| self.below(3) == 0)
            .collect()
    }
}

const TAGS: [&str; 3] = ["linux", "gpu", "windows"];

fn start_run(rng: &mut Rng, run: u128) -> Command {
    let mut c = StartRun {
        labels: labels(&rng.pick(&TAGS)),
        ..start(r(run))
    };
    match rng.below(4) {
        0 => c.machine_id = Some(m(rng.id(3))),
        1 => c.venv_id = Some(v(rng.id(8))),
        _ => {}
    }
    Command::StartRun(c)
}

fn finish(rng: &mut Rng, run_id: RunId) -> Command {
    let statuses = [
        RunStatus::Passed,
        RunStatus::Failed,
        RunStatus::Error,
        RunStatus::TimedOut,
    ];
    Command::ReportRunFinished(ReportRunFinished {
        run_id,
        status: statuses[rng.below(4) as usize],
        exit_code: None,
        summary: None,
        reason: None,
        error_code: None,
        tests: Vec::new(),
    })
}

fn lab_command(rng: &mut Rng, venvs: &mut u128) -> Command {
    let machine_id = m(rng.id(3));
    let venv_id = v(rng.id(*venvs));
    match rng.below(4) {
        0 => {
            *venvs += 1;
            Command::AddVenv(AddVenv {
                venv_id: v(*venvs),
                machine_id,
                name: VenvName::parse(format!("v{}", rng.below(6))).expect("name"),
                path: None,
                python: Line::parse("python3").expect("line"),
                requirements: Vec::new(),
            })
        }
        1 => Command::RemoveVenv(RemoveVenv { venv_id }),
        2 if rng.below(8) == 0 => Command::RetireMachine(RetireMachine { machine_id }),
        _ => Command::UpdateMachine(UpdateMachine {
            labels: Some(labels(&rng.pick(&TAGS))),
            ..UpdateMachine::new(machine_id)
        }),
    }
}

fn next_command(rng: &mut Rng, runs: &mut u128, venvs: &mut u128) -> (&'static str, Command) {
    match rng.below(10) {
        0..=2 => {
            *runs += 1;
            (MEMBER, start_run(rng, *runs))
        }
        3 => {
            let run_id = r(rng.id(*runs));
            (
                ADMIN,
                Command::CancelRun(CancelRun {
                    run_id,
                    reason: None,
                }),
            )
        }
        4..=7 => {
            let executor = if rng.below(4) == 0 { EXEC2 } else { EXEC };
            (executor, report(rng, *runs, *venvs))
        }
        _ => (ADMIN, lab_command(rng, venvs)),
    }
}

fn report(rng: &mut Rng, runs: u128, venvs: u128) -> Command {
    let run_id = r(rng.id(runs));
    let venv_id = v(rng.id(venvs));
    match rng.below(5) {
        0 => Command::ReportRunStarted(ReportRunStarted { run_id }),
        1 => finish(rng, run_id),
        2 => Command::ReportRunOutput(ReportRunOutput {
            run_id,
            seq: rng.below(5),
            stream: OutputStream::Stdout,
            text: "x".into(),
        }),
        3 if rng.below(5) == 0 => {
            Command::ReportVenvProvisioningFailed(ReportVenvProvisioningFailed {
                venv_id,
                reason: "x".into(),
                output_tail: String::new(),
            })
        }
        _ => Command::ReportVenvProvisioned(ReportVenvProvisioned {
            venv_id,
            python_version: None,
        }),
    }
}

fn check_invariants(lab: &Lab) {
    let free: Vec<_> = lab
        .venvs()
        .filter(|(_, v)| v.status == VenvStatus::Free)
        .map(|(id, _)| *id)
        .collect();
    let indexed: Vec<_> = lab.free_venvs().map(|(id, _)| *id).collect();
    assert_eq!(
        free, indexed,
        "the free-venv index matches the venvs' statuses"
    );
    for (venv_id, venv) in lab.venvs() {
        if let VenvStatus::Leased(run_id) = venv.status {
            let run = lab.run(&run_id).expect("leasing run exists");
            assert!(matches!(run.phase, RunPhase::Assigned | RunPhase::Running));
            assert_eq!(run.venv_id, Some(*venv_id));
        }
        if venv.status == VenvStatus::Free {
            assert_eq!(
                oldest_queued_for(lab, *venv_id),
                None,
                "free venv {venv_id} has a taker"
            );
        }
    }
    for (run_id, run) in lab.runs() {
        if matches!(run.phase, RunPhase::Assigned | RunPhase::Running) {
            let venv = run.venv_id.and_then(|id| lab.venv(&id)).expect("held venv");
            assert_eq!(
                venv.status,
                VenvStatus::Leased(*run_id),
                "one lease per venv"
            );
        }
        let in_queue = lab.queued_runs().any(|id| id == *run_id);
        assert_eq!(in_queue, run.phase == RunPhase::Queued);
    }
}

/// Counts of what a run of the sequence did, to make sure it exercised the scheduler.
#[derive(Default)]
struct Tally {
    leases: u32,
    queued: u32,
}

fn setup() -> Vec<Event> {
    all([
        base(),
        vec![
            machine(m(1), MEMBER, &["linux"]),
            machine(m(2), ADMIN, &["linux", "gpu"]),
        ],
        vec![machine(m(3), ADMIN, &["windows"])],
        free_venv(v(1), m(1)),
        free_venv(v(2), m(2)),
        vec![venv_added(v(3), m(3), "w")],
    ])
}

/// Runs 300 pseudo-random commands from `seed`, checking the invariants after each.
fn run_sequence(seed: u64, tally: &mut Tally) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let setup = setup();
    let mut lab = given(&setup).lab;
    let mut total = setup.len() as i64;
    let (mut runs, mut venvs) = (0u128, 3u128);
    for _ in 0..300 {
        let (actor, command) = next_command(&mut rng, &mut runs, &mut venvs);
        let Ok(events) = decide(&lab, &actor_of(actor), &command, now()) else {
            continue;
        };
        for event in &events {
            if let Event::VenvLeased(e) = event {
                let status = lab.venv(&e.venv_id).map(|v| v.status);
                assert_eq!(status, Some(VenvStatus::Free), "only a free venv is leased");
                tally.leases += 1;
            }
            tally.queued += u32::from(matches!(event, Event::RunQueued(_)));
            evolve(&mut lab, event);
            total += 1;
        }
        check_invariants(&lab);
    }
    assert_eq!(
        lab.versions.values().sum::<i64>(),
        total,
        "one version per event"
    );
}

#[test]
fn no_double_lease_and_no_idle_venv_with_a_waiting_run() {
    let mut tally = Tally::default();
    for seed in 1..=25 {
        run_sequence(seed, &mut tally);
    }
    assert!(
        tally.leases > 100 && tally.queued > 100,
        "{} leases, {} queued",
        tally.leases,
        tally.queued
    );
}
