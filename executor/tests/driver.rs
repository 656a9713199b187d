//! The driver against a real OpenSSH sshd (the test-support fixture) and the local transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runledger_executor::classify::ErrorCode;
use runledger_executor::driver::{
    ProvisionOutcome, ReportError, Reporter, RunJob, Transport, drive_provisioning, drive_run,
};
use runledger_executor::local::LocalMachine;
use runledger_executor::render::VenvSpec;
use runledger_executor::ssh::{
    AcceptFirstKey, PooledConnection, RemoteExit, SshAuth, SshOptions, SshTarget, connect,
};
use runledger_test_support::TestSshd;
use runledger_types::command::ReportRunFinished;
use runledger_types::ids::{RunId, VenvId};
use runledger_types::values::{EnvName, Os, RunStatus};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Records every report with the time it arrived.
#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, Value, Instant)>>);

impl Reporter for Recorder {
    async fn report(&self, command_type: &'static str, payload: Value) -> Result<(), ReportError> {
        self.0
            .lock()
            .unwrap()
            .push((command_type, payload, Instant::now()));
        Ok(())
    }
}

impl Recorder {
    /// `(seq, stream, text)` of the output reports, and the finished payload.
    fn split(&self) -> (Vec<(u64, String, String)>, Vec<Instant>, ReportRunFinished) {
        let reports = self.0.lock().unwrap();
        let (finished, outputs) = reports.split_last().expect("no reports");
        assert_eq!(finished.0, "report_run_finished");
        let chunks = outputs
            .iter()
            .map(|(kind, p, _)| {
                assert_eq!(*kind, "report_run_output");
                let text = |f: &str| p[f].as_str().unwrap().to_owned();
                (p["seq"].as_u64().unwrap(), text("stream"), text("text"))
            })
            .collect();
        let times = outputs.iter().map(|r| r.2).collect();
        (
            chunks,
            times,
            serde_json::from_value(finished.1.clone()).unwrap(),
        )
    }
}

/// A transport and, for the local one, its temporary home (removed on drop).
struct Machine {
    transport: Transport,
    _sshd: Option<TestSshd>,
    temp_home: Option<PathBuf>,
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(home) = &self.temp_home {
            let _ = std::fs::remove_dir_all(home);
        }
    }
}

async fn over_ssh() -> Machine {
    let sshd = TestSshd::start();
    let target = SshTarget {
        host: sshd.host.clone(),
        port: sshd.port,
        username: sshd.username.clone(),
        auth: SshAuth::Password(sshd.password.clone()),
        pinned_host_key: None,
    };
    let (connection, _) = connect(&target, &SshOptions::default(), &AcceptFirstKey)
        .await
        .unwrap();
    Machine {
        transport: Transport::Ssh(Arc::new(PooledConnection::unpooled(Arc::new(connection)))),
        _sshd: Some(sshd),
        temp_home: None,
    }
}

fn locally() -> Machine {
    let home = std::env::temp_dir().join(format!("rl-driver-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    Machine {
        transport: Transport::Local(LocalMachine::with_home(home.clone())),
        _sshd: None,
        temp_home: Some(home),
    }
}

fn job(command: &str, junit: Option<&str>) -> RunJob {
    RunJob {
        run_id: RunId::new(),
        os: Os::Linux,
        venv_path: "~/.runledger/venvs/none".into(),
        command: command.into(),
        test_case_env: BTreeMap::new(),
        run_env: BTreeMap::new(),
        tests: Vec::new(),
        files: Vec::new(),
        timeout: Duration::from_secs(20),
        junit_xml: junit.map(str::to_owned),
        max_output_bytes: runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES,
        after_seq: 0,
        shard: None,
    }
}

/// Drives `job` on `machine` to its end, recording every report.
async fn drive(
    machine: &Machine,
    job: &RunJob,
) -> (runledger_executor::classify::Classification, Recorder) {
    let recorder = Recorder::default();
    let verdict = drive_run(&machine.transport, job, &recorder, CancellationToken::new())
        .await
        .unwrap();
    (verdict, recorder)
}

async fn workdir_exists(machine: &Machine, run_id: RunId) -> bool {
    let test = format!("test -e ~/.runledger/runs/{run_id}");
    machine.transport.exec_quiet(&test).await.unwrap() == RemoteExit::Code(0)
}

/// True once no process mentions `run_id` (within a second).
async fn no_process_left(run_id: RunId) -> bool {
    for _ in 0..20 {
        let found = std::process::Command::new("pgrep")
            .args(["-f", &run_id.to_string()])
            .output()
            .unwrap();
        if !found.status.success() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

const PASSING_XML: &str = r#"<testsuite><testcase classname="m" name="t1" time="0.25"/><testcase classname="m" name="t2"/><testcase classname="m" name="t3"><skipped/></testcase></testsuite>"#;

async fn passing_run(machine: Machine) {
    let name = |n: &str| EnvName::parse(n).unwrap();
    let mut job = job(
        &format!(
            "cat data/input.txt; sleep 0.4; echo \"$GREETING $WHO\"; sleep 0.2; \
             echo err1 >&2; printf '%s' '{PASSING_XML}' > report.xml"
        ),
        Some("report.xml"),
    );
    job.files = vec![("data/input.txt".into(), b"out1\n".to_vec())];
    job.test_case_env = BTreeMap::from([
        (name("GREETING"), "hello".into()),
        (name("WHO"), "case".into()),
    ]);
    job.run_env = BTreeMap::from([(name("WHO"), "run".into())]);
    let (verdict, recorder) = drive(&machine, &job).await;
    assert_eq!(verdict.status, RunStatus::Passed);

    let (chunks, times, finished) = recorder.split();
    let expected = [
        (1, "stdout", "out1\n"),
        (2, "stdout", "hello run\n"),
        (3, "stderr", "err1\n"),
    ];
    let chunks: Vec<_> = chunks
        .iter()
        .map(|(seq, stream, text)| (*seq, stream.as_str(), text.as_str()))
        .collect();
    assert_eq!(chunks, expected);
    // The first chunk went out on the 100 ms timer, well before the second line was printed.
    assert!(
        times[1] - times[0] >= Duration::from_millis(250),
        "{times:?}"
    );
    assert_eq!(finished.run_id, job.run_id);
    assert_eq!(finished.status, RunStatus::Passed);
    assert_eq!(finished.exit_code, Some(0));
    let summary = finished.summary.unwrap();
    assert_eq!(
        (
            summary.passed,
            summary.failed,
            summary.skipped,
            summary.errors
        ),
        (2, 0, 1, 0)
    );
    assert_eq!(finished.tests.len(), 3);
    assert_eq!(finished.tests[0].duration_ms, 250);
    assert_eq!((finished.reason, finished.error_code), (None, None));
    assert!(!workdir_exists(&machine, job.run_id).await);
}

async fn failing_run(machine: Machine) {
    let xml = r#"<testsuite><testcase classname="m" name="ok"/><testcase classname="m" name="bad"><failure message="boom">trace</failure></testcase></testsuite>"#;
    let job = job(
        &format!("printf '%s' '{xml}' > out/report.xml; echo FAILED; exit 1"),
        Some("out/report.xml"),
    );
    let mut job = job;
    job.files = vec![("out/.keep".into(), Vec::new())];
    let (verdict, recorder) = drive(&machine, &job).await;
    assert_eq!(verdict.status, RunStatus::Failed);
    let (chunks, _, finished) = recorder.split();
    assert_eq!(chunks, [(1, "stdout".into(), "FAILED\n".into())]);
    assert_eq!(finished.status, RunStatus::Failed);
    assert_eq!(finished.exit_code, Some(1));
    assert_eq!(finished.summary.unwrap().failed, 1);
    assert_eq!(finished.tests[1].message.as_deref(), Some("boom"));
    assert!(finished.reason.unwrap().contains("code 1"));
    assert_eq!(finished.error_code, None);
}

/// `command` is killed by a timeout of 1 s (or a cancel after 300 ms) and leaves no process.
async fn killed_run(machine: Machine, command: &str, cancel_it: bool, at_most: Duration) {
    let mut job = job("", None);
    job.command = format!("echo started; {command} # {}", job.run_id);
    job.timeout = Duration::from_secs(if cancel_it { 20 } else { 1 });
    let cancel = CancellationToken::new();
    if cancel_it {
        let cancel = cancel.clone();
        let run_id = job.run_id;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // The check below means something: the run's processes are found while it runs.
            assert!(!no_process_left(run_id).await, "pgrep does not see the run");
            cancel.cancel();
        });
    }
    let recorder = Recorder::default();
    let started = Instant::now();
    let verdict = drive_run(&machine.transport, &job, &recorder, cancel)
        .await
        .unwrap();
    let took = started.elapsed();
    let expected = if cancel_it {
        RunStatus::Cancelled
    } else {
        RunStatus::TimedOut
    };
    assert_eq!(verdict.status, expected);
    assert!(took < at_most, "took {took:?}");
    let (chunks, _, finished) = recorder.split();
    assert_eq!(chunks[0], (1, "stdout".into(), "started\n".into()));
    // Nothing but the command's own output: not what `setsid` or the shell say about the kill.
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    assert_eq!(finished.status, expected);
    assert!(finished.reason.is_some());
    assert!(
        no_process_left(job.run_id).await,
        "a process of the run survived"
    );
    assert!(!workdir_exists(&machine, job.run_id).await);
}

async fn provisioning(machine: Machine) {
    let name = uuid::Uuid::new_v4();
    let path = format!("~/.runledger/venvs/{name}");
    let spec = VenvSpec {
        path: &path,
        python: "/usr/bin/python3",
        requirements: &[],
        upgrade_pip: false,
    };
    let recorder = Recorder::default();
    let venv_id = VenvId::new();
    let outcome = drive_provisioning(
        &machine.transport,
        Os::Linux,
        venv_id,
        spec,
        HOUR,
        &recorder,
    )
    .await
    .unwrap();
    let ProvisionOutcome::Provisioned { python_version } = outcome else {
        panic!("{outcome:?}");
    };
    let version = python_version.unwrap();
    assert!(version.starts_with("3."), "{version}");
    let reports = recorder.0.lock().unwrap().clone();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0, "report_venv_provisioned");
    assert_eq!(
        reports[0].1,
        json!({"venv_id": venv_id, "python_version": version})
    );
    let check = format!("test -x {path}/bin/python && rm -rf {path}");
    assert_eq!(
        machine.transport.exec_quiet(&check).await.unwrap(),
        RemoteExit::Code(0)
    );

    let bad = VenvSpec {
        python: "python-does-not-exist",
        ..spec
    };
    let recorder = Recorder::default();
    let outcome = drive_provisioning(&machine.transport, Os::Linux, venv_id, bad, HOUR, &recorder)
        .await
        .unwrap();
    let ProvisionOutcome::Failed {
        reason,
        output_tail,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("code 127"), "{reason}");
    assert!(
        output_tail.contains("python-does-not-exist"),
        "{output_tail}"
    );
    let reports = recorder.0.lock().unwrap().clone();
    assert_eq!(reports[0].0, "report_venv_provisioning_failed");
    assert_eq!(
        reports[0].1,
        json!({"venv_id": venv_id, "reason": reason, "output_tail": output_tail})
    );
    // An interpreter that never finishes: the provisioning gives up after its timeout.
    let slow = std::env::temp_dir().join(format!("runledger-slow-python-{name}"));
    std::fs::write(&slow, "#!/bin/sh\necho creating\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let slow_path = slow.display().to_string();
    let hanging = VenvSpec {
        python: &slow_path,
        ..spec
    };
    let recorder = Recorder::default();
    let started = Instant::now();
    let timeout = Duration::from_secs(1);
    let outcome = drive_provisioning(
        &machine.transport,
        Os::Linux,
        venv_id,
        hanging,
        timeout,
        &recorder,
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let ProvisionOutcome::Failed {
        reason,
        output_tail,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("did not finish within 1 s"), "{reason}");
    assert!(output_tail.contains("creating"), "{output_tail}");
    let _ = std::fs::remove_file(&slow);
}

const HOUR: Duration = Duration::from_secs(3600);

/// A script too long for one command-line argument is uploaded and run as a file.
#[tokio::test]
async fn an_oversized_script_runs_from_a_file_over_ssh() {
    let machine = over_ssh().await;
    let job = job(&format!("echo big # {}", "x".repeat(110_000)), None);
    let (verdict, recorder) = drive(&machine, &job).await;
    assert_eq!(verdict.status, RunStatus::Passed);
    let (chunks, _, _) = recorder.split();
    assert_eq!(chunks, vec![(1, "stdout".to_owned(), "big\n".to_owned())]);
    assert!(!workdir_exists(&machine, job.run_id).await);
}

#[tokio::test]
async fn passing_run_over_ssh() {
    passing_run(over_ssh().await).await;
}

#[tokio::test]
async fn passing_run_locally() {
    passing_run(locally()).await;
}

#[tokio::test]
async fn failing_run_over_ssh() {
    failing_run(over_ssh().await).await;
}

#[tokio::test]
async fn failing_run_locally() {
    failing_run(locally()).await;
}

#[tokio::test]
async fn timeout_over_ssh_leaves_no_process() {
    killed_run(over_ssh().await, "sleep 30", false, Duration::from_secs(4)).await;
}

#[tokio::test]
async fn timeout_locally_leaves_no_process() {
    killed_run(locally(), "sleep 30", false, Duration::from_secs(4)).await;
}

#[tokio::test]
async fn cancel_over_ssh_leaves_no_process() {
    killed_run(over_ssh().await, "sleep 30", true, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn cancel_locally_leaves_no_process() {
    killed_run(locally(), "sleep 30", true, Duration::from_secs(3)).await;
}

/// A command that ignores TERM gets KILL after the grace period.
#[tokio::test]
async fn term_ignored_gets_kill_over_ssh() {
    let grace = runledger_executor::driver::KILL_GRACE;
    let command = "trap '' TERM; sleep 30";
    killed_run(
        over_ssh().await,
        command,
        false,
        grace + Duration::from_secs(4),
    )
    .await;
}

#[tokio::test]
async fn term_ignored_gets_kill_locally() {
    let grace = runledger_executor::driver::KILL_GRACE;
    let command = "trap '' TERM; sleep 30";
    killed_run(locally(), command, false, grace + Duration::from_secs(4)).await;
}

#[tokio::test]
async fn provisioning_over_ssh() {
    provisioning(over_ssh().await).await;
}

#[tokio::test]
async fn provisioning_locally() {
    provisioning(locally()).await;
}

/// 300 MiB of output against a 1 MiB limit: 1 MiB is recorded, then a note of what was
/// dropped, and the run ends as it would have.
#[tokio::test]
async fn output_past_the_limit_is_dropped_and_the_run_still_ends() {
    let machine = locally();
    let mut job = job(
        "head -c 314572800 /dev/zero | tr '\\0' x; echo done >&2",
        None,
    );
    job.max_output_bytes = 1024 * 1024;
    let (verdict, recorder) = drive(&machine, &job).await;
    assert_eq!(verdict.status, RunStatus::Passed);
    let (chunks, _, finished) = recorder.split();
    assert_eq!(finished.status, RunStatus::Passed);
    let stdout: usize = chunks
        .iter()
        .filter(|(_, stream, _)| stream == "stdout")
        .map(|(_, _, text)| text.len())
        .sum();
    assert_eq!(stdout, 1024 * 1024);
    let stderr: String = chunks
        .iter()
        .filter(|(_, stream, _)| stream == "stderr")
        .map(|(_, _, text)| text.as_str())
        .collect();
    assert!(stderr.contains("output limit reached"), "{stderr}");
    let dropped = 314_572_800 - 1024 * 1024 + "done\n".len();
    assert!(
        stderr.contains(&format!("{dropped} bytes of output were dropped")),
        "{stderr}"
    );
}

/// A JUnit report of 6,000 tests (about 1.5 MB of results, more than one NATS message holds)
/// goes out as numbered `report_run_tests` parts, each small enough, then `report_run_finished`
/// without tests: every result is sent, in order.
#[tokio::test]
async fn a_large_junit_report_is_sent_in_parts() {
    let machine = locally();
    let script = "import sys\n\
        cases = ''.join('<testcase classname=\"suite.module_%d\" name=\"test_%05d_%s\" time=\"0.001\"/>' % (i % 50, i, 'x' * 150) for i in range(6000))\n\
        open('report.xml', 'w').write('<testsuite tests=\"6000\">' + cases + '</testsuite>')\n";
    let mut job = job("python3 make_report.py", Some("report.xml"));
    job.files = vec![("make_report.py".into(), script.as_bytes().to_vec())];
    let (verdict, recorder) = drive(&machine, &job).await;
    assert_eq!(verdict.status, RunStatus::Passed);
    let reports = recorder.0.lock().unwrap();
    let parts: Vec<&Value> = reports
        .iter()
        .filter(|(kind, _, _)| *kind == "report_run_tests")
        .map(|(_, payload, _)| payload)
        .collect();
    assert!(parts.len() >= 4, "{} parts", parts.len());
    let mut names = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        assert_eq!(part["part"], index + 1);
        let size = serde_json::to_vec(part).unwrap().len();
        assert!(size < 300 * 1024, "part {} is {size} bytes", index + 1);
        names.extend(
            part["tests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].clone()),
        );
    }
    assert_eq!(names.len(), 6000);
    assert_eq!(names[0], json!(format!("test_00000_{}", "x".repeat(150))));
    assert_eq!(
        names[5999],
        json!(format!("test_05999_{}", "x".repeat(150)))
    );
    let (kind, finished, _) = reports.last().unwrap();
    assert_eq!(*kind, "report_run_finished");
    assert_eq!(finished["tests"], json!([]));
    assert_eq!(finished["summary"]["passed"], 6000);
}

/// Over SSH a run's command sees an explicit environment: the account's basics (`HOME`,
/// `PATH`, locale), runledger's and the run's variables, nothing else sshd or the profile set.
#[tokio::test]
async fn a_run_over_ssh_sees_only_its_explicit_environment() {
    let machine = over_ssh().await;
    let mut job = job("env", None);
    job.run_env = BTreeMap::from([(EnvName::parse("TARGET").unwrap(), "staging".into())]);
    let (verdict, recorder) = drive(&machine, &job).await;
    assert_eq!(verdict.status, RunStatus::Passed);
    let (chunks, _, _) = recorder.split();
    let printed: String = chunks.iter().map(|(_, _, text)| text.as_str()).collect();
    let names: Vec<&str> = printed
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(printed.contains("TARGET=staging"), "{printed}");
    assert!(names.contains(&"RUNLEDGER_RUN_ID"), "{printed}");
    assert!(
        names.contains(&"HOME") && names.contains(&"PATH"),
        "{printed}"
    );
    for name in ["SSH_CONNECTION", "SSH_CLIENT", "MAIL"] {
        assert!(
            !names.contains(&name),
            "{name} reached the command:\n{printed}"
        );
    }
    let allowed = [
        "HOME",
        "PATH",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "PYTHONUNBUFFERED",
        "VIRTUAL_ENV",
        "TARGET",
        "RUNLEDGER_RUN_ID",
        // What sh itself sets.
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
    ];
    for name in &names {
        assert!(
            allowed.contains(name),
            "{name} reached the command:\n{printed}"
        );
    }
}

#[tokio::test]
async fn output_that_cannot_be_recorded_ends_the_run_as_output_lost() {
    let machine = locally();
    let job = job("echo one; sleep 0.3; echo two; sleep 0.3; echo three", None);
    // Chunk 2 is refused for good (not as a gap): the log's output of the run stops at chunk 1,
    // so the run cannot pass, though its command did.
    let reporter = Refuser {
        recorder: Recorder::default(),
        seq: 2,
        code: runledger_types::RejectionCode::RunNotRunning,
    };
    let verdict = drive_run(
        &machine.transport,
        &job,
        &reporter,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(verdict.status, RunStatus::Error, "{verdict:?}");
    assert_eq!(verdict.error_code, Some(ErrorCode::OutputLost));
    assert!(
        verdict
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("from chunk 2 on"),
        "{verdict:?}"
    );
    let (chunks, _, finished) = reporter.recorder.split();
    assert_eq!(finished.error_code.as_deref(), Some("output_lost"));
    assert!(chunks.iter().all(|(seq, _, _)| *seq != 2), "{chunks:?}");
}

/// Refuses chunk `seq` with `code` every time it comes; records everything else.
struct Refuser {
    recorder: Recorder,
    seq: u64,
    code: runledger_types::RejectionCode,
}

impl Reporter for Refuser {
    async fn report(&self, command_type: &'static str, payload: Value) -> Result<(), ReportError> {
        if command_type == "report_run_output" && payload["seq"] == self.seq {
            return Err(ReportError {
                command_type,
                reason: format!("rejected: {}", self.code.as_str()),
                rejection: Some(self.code),
            });
        }
        self.recorder.report(command_type, payload).await
    }
}

/// Refuses chunk 2 as `output_gap` the first `refusals` times it comes, as a handler that has
/// not yet seen chunk 1 would; records everything it accepts.
struct GapRefuser {
    recorder: Recorder,
    refusals: Mutex<u32>,
}

impl Reporter for GapRefuser {
    async fn report(&self, command_type: &'static str, payload: Value) -> Result<(), ReportError> {
        if command_type == "report_run_output" && payload["seq"] == 2 {
            let mut refusals = self.refusals.lock().unwrap();
            if *refusals > 0 {
                *refusals -= 1;
                return Err(ReportError {
                    command_type,
                    reason: "rejected: output_gap".into(),
                    rejection: Some(runledger_types::RejectionCode::OutputGap),
                });
            }
        }
        self.recorder.report(command_type, payload).await
    }
}

#[tokio::test]
async fn a_chunk_refused_as_a_gap_again_is_sent_until_it_is_taken() {
    let machine = locally();
    let job = job("echo one; sleep 0.3; echo two; sleep 0.3; echo three", None);
    // The pipelined send, then three sends on its own: all refused; the next one is taken.
    let reporter = GapRefuser {
        recorder: Recorder::default(),
        refusals: Mutex::new(4),
    };
    let verdict = drive_run(
        &machine.transport,
        &job,
        &reporter,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(verdict.status, RunStatus::Passed);
    // This reporter takes chunk 3 while chunk 2 is refused (a handler would refuse it too, and
    // it would be sent again): what matters is that chunk 2 is not given up on.
    let (mut chunks, _, _) = reporter.recorder.split();
    chunks.sort();
    let text: String = chunks.iter().map(|(_, _, text)| text.as_str()).collect();
    assert_eq!(text, "one\ntwo\nthree\n", "{chunks:?}");
    assert_eq!(*reporter.refusals.lock().unwrap(), 0);
}
