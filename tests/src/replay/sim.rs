//! The lab simulation: which command happens next, and the events it decides.

use super::content::{self, REQUESTERS};
use super::lab::{self, Machine, Run, SimSettings};
use super::rng::Rng;
use super::writer::{Command, LogWriter};
use runledger_types::event::{
    CommandRejected, ExecutorHeartbeat, RunAssigned, RunCancelRequested, RunOutput, RunQueued,
    RunRequested, RunStarted, VenvLeased, VenvReleased,
};
use runledger_types::{CommandId, EnvName, Event, RunId, StreamId, StreamType, TestCaseId, VenvId};
use std::collections::{BTreeMap, VecDeque};

/// The simulated lab and its runs in flight.
#[derive(Debug)]
pub struct Sim {
    settings: SimSettings,
    rng: Rng,
    machines: Vec<Machine>,
    test_cases: Vec<TestCaseId>,
    executors: Vec<(String, String)>,
    build_number: EnvName,
    /// Assigned or running runs.
    active: Vec<Run>,
    queued: usize,
    recently_finished: VecDeque<RunId>,
    next_heartbeat: i64,
    heartbeat_turn: usize,
    builds: u64,
}

/// Positions between two heartbeats (of alternating executors).
const HEARTBEAT_EVERY: i64 = 2_500;

impl Sim {
    /// A lab not registered yet: call [`Sim::setup`] first.
    pub fn new(settings: SimSettings) -> anyhow::Result<Self> {
        let executors = (1..=settings.executors)
            .map(|i| (format!("exec-{i}"), format!("executor:exec-{i}")))
            .collect();
        Ok(Self {
            rng: Rng::new(settings.seed),
            machines: Vec::new(),
            test_cases: Vec::new(),
            executors,
            build_number: EnvName::parse("BUILD_NUMBER")?,
            active: Vec::new(),
            queued: 0,
            recently_finished: VecDeque::new(),
            next_heartbeat: HEARTBEAT_EVERY,
            heartbeat_turn: 0,
            builds: 0,
            settings,
        })
    }

    /// Registers users, machines, venvs (added, then provisioned) and test cases.
    pub fn setup(&mut self, log: &mut LogWriter) -> anyhow::Result<()> {
        let lab = lab::register(log, &self.settings, &self.executors)?;
        self.machines = lab.machines;
        self.test_cases = lab.test_cases;
        Ok(())
    }

    /// Runs now waiting in a machine's queue.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Plays one command; `room` is how many more events the log may take (when below 4, only
    /// single-event commands are played).
    pub fn step(&mut self, log: &mut LogWriter, room: i64) -> anyhow::Result<()> {
        let in_flight = self.active.len() + self.queued;
        if room < 4 || log.position() >= self.next_heartbeat {
            self.heartbeat(log)
        } else if self.rng.chance(0.002) {
            self.rejection(log)
        } else if self.queued > 0 && self.rng.chance(0.0005) {
            self.cancel_queued(log)
        } else if self.active.is_empty()
            || (in_flight < self.settings.in_flight && self.rng.chance(0.4))
        {
            self.start_run(log)
        } else {
            let index = self.rng.below(self.active.len());
            self.advance(log, index)
        }
    }

    /// `start_run`: `run_requested`, then a lease or `run_queued`.
    fn start_run(&mut self, log: &mut LogWriter) -> anyhow::Result<()> {
        // Skewed: low-numbered machines are asked for far more often, so they queue.
        let machine = ((self.machines.len() as f64) * self.rng.unit().powf(1.1)) as usize;
        let machine = machine.min(self.machines.len() - 1);
        let requester = REQUESTERS[[0, 0, 0, 0, 0, 0, 1, 2, 3][self.rng.below(9)]];
        let run_id = RunId::new();
        self.builds += 1;
        let by_labels = self.rng.chance(0.2);
        let requested = RunRequested {
            run_id,
            test_case_id: *self.rng.pick(&self.test_cases),
            user: runledger_types::Actor::parse(requester)?,
            machine_id: (!by_labels).then_some(self.machines[machine].id),
            labels: if by_labels {
                [runledger_types::Label::parse(format!(
                    "rack{}",
                    machine % 10
                ))?]
                .into()
            } else {
                Default::default()
            },
            venv_id: None,
            env: BTreeMap::from([(self.build_number.clone(), self.builds.to_string())]),
            rerun_of: None,
            tests: Vec::new(),
            python: None,
            group: None,
        };
        let command = Command {
            correlation_id: Some(run_id.0),
            ..Command::new(requester)
        };
        log.append(&command, &Event::RunRequested(requested))?;
        let run = Run {
            id: run_id,
            machine,
            requester,
            venv: None,
            assigned: None,
            started: false,
            chunks_left: self.rng.between(1, 12),
            seq: 0,
            cancel: None,
        };
        match self.machines[machine].free.pop() {
            Some(venv) => self.assign(log, &command, run, venv),
            None => {
                let queued = RunQueued {
                    run_id,
                    reason: "no_free_venv".into(),
                };
                log.append(&command, &Event::RunQueued(queued))?;
                self.machines[machine].queue.push_back(run);
                self.queued += 1;
                Ok(())
            }
        }
    }

    /// `venv_leased` + `run_assigned` within `command`.
    fn assign(
        &mut self,
        log: &mut LogWriter,
        command: &Command<'_>,
        mut run: Run,
        venv_id: VenvId,
    ) -> anyhow::Result<()> {
        let leased = VenvLeased {
            venv_id,
            run_id: run.id,
        };
        log.append(command, &Event::VenvLeased(leased))?;
        let assigned = RunAssigned {
            run_id: run.id,
            venv_id: Some(venv_id),
            machine_id: Some(self.machines[run.machine].id),
            attempt: 1,
        };
        run.assigned = Some(log.append(command, &Event::RunAssigned(assigned))?);
        run.venv = Some(venv_id);
        self.active.push(run);
        Ok(())
    }

    /// The next thing that happens to active run `index`.
    fn advance(&mut self, log: &mut LogWriter, index: usize) -> anyhow::Result<()> {
        let executor = self.active[index].machine % self.executors.len();
        let (name, actor) = self.executors[executor].clone();
        let run = &mut self.active[index];
        let command = Command {
            correlation_id: Some(run.id.0),
            causation_id: run.assigned,
            ..Command::new(&actor)
        };
        if !run.started {
            run.started = true;
            let started = RunStarted {
                run_id: run.id,
                executor: name,
            };
            log.append(&command, &Event::RunStarted(started))?;
        } else if run.cancel.is_none() && self.rng.chance(0.004) {
            let reason = "superseded by a newer build";
            run.cancel = Some(reason);
            let cancel = RunCancelRequested {
                run_id: run.id,
                reason: Some(reason.into()),
            };
            let by_user = Command {
                correlation_id: Some(run.id.0),
                ..Command::new(run.requester)
            };
            log.append(&by_user, &Event::RunCancelRequested(cancel))?;
        } else if run.cancel.is_none() && run.chunks_left > 0 {
            run.chunks_left -= 1;
            run.seq += 1;
            let (stream, text) = content::output_chunk(&mut self.rng, run.seq);
            let output = RunOutput {
                run_id: run.id,
                seq: run.seq,
                stream,
                text,
            };
            log.append(&command, &Event::RunOutput(output))?;
        } else {
            return self.finish(log, index, &command);
        }
        Ok(())
    }

    /// `run_finished` + `venv_released` (+ the freed venv's next queued run).
    fn finish(
        &mut self,
        log: &mut LogWriter,
        index: usize,
        command: &Command<'_>,
    ) -> anyhow::Result<()> {
        let run = self.active.swap_remove(index);
        let finished = content::finished(&mut self.rng, run.id, run.cancel);
        log.append(command, &Event::RunFinished(finished))?;
        self.closed(log, run.id);
        let Some(venv_id) = run.venv else {
            return Ok(());
        };
        let released = VenvReleased {
            venv_id,
            run_id: run.id,
        };
        log.append(command, &Event::VenvReleased(released))?;
        match self.machines[run.machine].queue.pop_front() {
            Some(next) => {
                self.queued -= 1;
                self.assign(log, command, next, venv_id)
            }
            None => {
                self.machines[run.machine].free.push(venv_id);
                Ok(())
            }
        }
    }

    /// `cancel_run` of a queued run: `run_finished` (cancelled) and it leaves the queue.
    fn cancel_queued(&mut self, log: &mut LogWriter) -> anyhow::Result<()> {
        let start = self.rng.below(self.machines.len());
        let count = self.machines.len();
        let Some(machine) = (0..count)
            .map(|i| (start + i) % count)
            .find(|&i| !self.machines[i].queue.is_empty())
        else {
            return self.heartbeat(log);
        };
        let Some(run) = self.machines[machine].queue.pop_back() else {
            return self.heartbeat(log);
        };
        self.queued -= 1;
        let command = Command {
            correlation_id: Some(run.id.0),
            ..Command::new(run.requester)
        };
        let finished = content::finished(&mut self.rng, run.id, Some("no longer needed"));
        log.append(&command, &Event::RunFinished(finished))?;
        self.closed(log, run.id);
        Ok(())
    }

    fn closed(&mut self, log: &mut LogWriter, run_id: RunId) {
        log.close_stream(StreamId::new(StreamType::Run, run_id).as_str());
        self.recently_finished.push_back(run_id);
        if self.recently_finished.len() > 64 {
            self.recently_finished.pop_front();
        }
    }

    /// A refused command: cancelling a finished run, or starting one of an unknown test case.
    fn rejection(&mut self, log: &mut LogWriter) -> anyhow::Result<()> {
        let requester = *self.rng.pick(&REQUESTERS);
        let command = Command::new(requester);
        let finished = self.recently_finished.front().copied();
        let (kind, error) = content::rejection(&mut self.rng, finished);
        let rejected = CommandRejected {
            command_id: CommandId(command.id),
            command_type: kind.into(),
            error,
        };
        log.append(&command, &Event::CommandRejected(rejected))?;
        Ok(())
    }

    /// `executor_heartbeat` of the next executor, naming the runs it holds.
    fn heartbeat(&mut self, log: &mut LogWriter) -> anyhow::Result<()> {
        let turn = self.heartbeat_turn % self.executors.len();
        self.heartbeat_turn += 1;
        self.next_heartbeat = log.position() + HEARTBEAT_EVERY;
        let run_ids = self
            .active
            .iter()
            .filter(|run| run.started && run.machine % self.executors.len() == turn)
            .map(|run| run.id)
            .collect();
        let (name, actor) = &self.executors[turn];
        let beat = ExecutorHeartbeat {
            executor: name.clone(),
            run_ids,
        };
        log.append(&Command::new(actor), &Event::ExecutorHeartbeat(beat))?;
        Ok(())
    }
}
