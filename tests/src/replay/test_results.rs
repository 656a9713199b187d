//! A log of one big suite run many times, for the `insights` benchmark: every run reports
//! every test (in parts of 500, as executors send large reports), with realistic durations
//! (each test its own typical time, jittered per run), a few tests that always fail, a few
//! skipped, and a few flaky ones that fail a third of the time.

use super::content;
use super::rng::Rng;
use super::writer::{Command, LogWriter};
use runledger_types::command::{TestOutcome, TestResult};
use runledger_types::event::{
    RunAssigned, RunFinished, RunRequested, RunStarted, RunTestsReported,
};
use runledger_types::{Actor, Event, MachineId, RunId, RunStatus, TestCaseId, TestSummary, VenvId};

/// Per-test results per `run_tests_reported` part.
pub const PART: usize = 500;

/// The shape of the generated suite.
#[derive(Debug, Clone, Copy)]
pub struct SuiteSettings {
    /// Tests in the suite.
    pub tests: usize,
    /// Runs of it.
    pub runs: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl SuiteSettings {
    /// Events the log holds: the machine and test case, then per run its request, assignment,
    /// start, result parts and finish.
    pub fn events(&self) -> i64 {
        let parts = self.tests.div_ceil(PART);
        2 + (self.runs * (4 + parts)) as i64
    }
}

/// What a test of the suite does.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Passes,
    AlwaysFails,
    Skipped,
    /// Fails this often.
    Flaky(f64),
}

/// Writes the suite's log into `log`; returns the test case.
pub fn write(log: &mut LogWriter, settings: SuiteSettings) -> anyhow::Result<TestCaseId> {
    let mut rng = Rng::new(settings.seed);
    let admin = Command::new("admin");
    let machine_id = MachineId::new();
    log.append(
        &admin,
        &Event::MachineRegistered(content::machine(1, machine_id)?),
    )?;
    let test_case = content::test_case(0)?;
    let test_case_id = test_case.test_case_id;
    log.append(&admin, &Event::TestCaseDefined(test_case))?;
    let suite: Vec<(String, String, u64, Behaviour)> = (0..settings.tests)
        .map(|i| {
            let behaviour = match i % 100 {
                0 if i % 1000 == 0 => Behaviour::AlwaysFails,
                1 => Behaviour::Skipped,
                2 if i % 400 == 2 => Behaviour::Flaky(0.33),
                _ => Behaviour::Passes,
            };
            // Typical durations from a few ms to a few s, most of them short.
            let typical = 5 + (rng.unit().powi(3) * 3000.0) as u64;
            (
                format!("tests.suite_0.test_module_{}", i / 25),
                format!("test_case_{i}"),
                typical,
                behaviour,
            )
        })
        .collect();
    let venv_id = VenvId::new();
    let executor = "executor:exec-1";
    for _ in 0..settings.runs {
        let run_id = RunId::new();
        let requested = Event::RunRequested(RunRequested {
            run_id,
            test_case_id,
            user: Actor::parse("ci")?,
            machine_id: None,
            labels: Default::default(),
            venv_id: None,
            env: Default::default(),
            rerun_of: None,
            tests: Vec::new(),
            python: None,
            group: None,
        });
        log.append(&Command::new("ci"), &requested)?;
        let assigned = Event::RunAssigned(RunAssigned {
            run_id,
            venv_id: Some(venv_id),
            machine_id: Some(machine_id),
            attempt: 1,
        });
        log.append(&Command::new("ci"), &assigned)?;
        let started = Event::RunStarted(RunStarted {
            run_id,
            executor: "exec-1".to_owned(),
        });
        log.append(&Command::new(executor), &started)?;
        let mut summary = TestSummary::default();
        let results: Vec<TestResult> = suite
            .iter()
            .map(|(classname, name, typical, behaviour)| {
                let status = match behaviour {
                    Behaviour::Passes => TestOutcome::Passed,
                    Behaviour::AlwaysFails => TestOutcome::Failed,
                    Behaviour::Skipped => TestOutcome::Skipped,
                    Behaviour::Flaky(p) if rng.chance(*p) => TestOutcome::Failed,
                    Behaviour::Flaky(_) => TestOutcome::Passed,
                };
                match status {
                    TestOutcome::Passed => summary.passed += 1,
                    TestOutcome::Failed => summary.failed += 1,
                    TestOutcome::Skipped => summary.skipped += 1,
                    TestOutcome::Error => summary.errors += 1,
                }
                let jitter = 0.8 + 0.4 * rng.unit();
                TestResult {
                    name: name.clone(),
                    classname: classname.clone(),
                    status,
                    duration_ms: if status == TestOutcome::Skipped {
                        0
                    } else {
                        (*typical as f64 * jitter) as u64
                    },
                    message: (status == TestOutcome::Failed)
                        .then(|| "AssertionError: assert 200 == 503".to_owned()),
                }
            })
            .collect();
        for (part, tests) in results.chunks(PART).enumerate() {
            let reported = Event::RunTestsReported(RunTestsReported {
                run_id,
                part: u32::try_from(part + 1)?,
                tests: tests.to_vec(),
            });
            log.append(&Command::new(executor), &reported)?;
        }
        let status = if summary.failed > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Passed
        };
        let finished = Event::RunFinished(RunFinished {
            run_id,
            status,
            exit_code: Some(i32::from(status == RunStatus::Failed)),
            summary: Some(summary),
            reason: None,
            error_code: None,
            tests: Vec::new(),
        });
        log.append(&Command::new(executor), &finished)?;
        log.close_stream(&format!("run-{}", run_id.0));
    }
    Ok(test_case_id)
}
