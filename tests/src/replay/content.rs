//! What the lab is made of and what its runs print: machines, venvs, test cases, output chunks
//! of pytest-like lines, final statuses with JUnit summaries.

use super::rng::Rng;
use runledger_types::command::{OutputStream, TestFile, TestOutcome, TestResult};
use runledger_types::event::{
    MachineRegistered, RunFinished, TestCaseDefined, UserRegistered, VenvAdded,
};
use runledger_types::{
    Actor, EnvName, Host, HostKeyFingerprint, Label, Line, MachineId, MachineName, Os,
    PasswordHash, Port, Rejection, RejectionCode, RelativePath, RemotePath, RemoteUser, Role,
    RunId, RunStatus, SealedSecret, TestCaseId, TestSummary, Text, Username, VenvId, VenvName,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Registered users and their roles; `jenkins` (a system actor) starts most runs.
pub const USERS: [(&str, Role); 4] = [
    ("admin", Role::Admin),
    ("alice", Role::Member),
    ("bob", Role::Member),
    ("carol", Role::Member),
];

/// Who starts runs, most often first.
pub const REQUESTERS: [&str; 4] = ["jenkins", "alice", "bob", "carol"];

/// `user_registered` with a dummy argon2 PHC string.
pub fn user(name: &str, role: Role) -> anyhow::Result<UserRegistered> {
    Ok(UserRegistered {
        username: Username::parse(name)?,
        role,
        password_hash: PasswordHash(format!(
            "$argon2id$v=19$m=19456,t=2,p=1${name}c2FsdHNhbHQ$WlqYpW8Aq1dXvSGKWpaQ0qzFTnqAvtmRhkqhQn0dT4Y"
        )),
    })
}

/// `machine_registered` for machine number `index`, its password sealed (dummy base64).
pub fn machine(index: usize, machine_id: MachineId) -> anyhow::Result<MachineRegistered> {
    let os = if index.is_multiple_of(10) {
        Os::Windows
    } else {
        Os::Linux
    };
    let os_label = if os == Os::Windows {
        "windows"
    } else {
        "linux"
    };
    let labels: BTreeSet<Label> = [
        format!("rack{}", index % 10),
        os_label.into(),
        "pool".into(),
    ]
    .into_iter()
    .map(Label::parse)
    .collect::<Result<_, _>>()?;
    Ok(MachineRegistered {
        machine_id,
        name: MachineName::parse(format!("lab-{index:03}"))?,
        host: Host::parse(format!("10.0.{}.{}", index / 250, index % 250 + 1))?,
        port: Port::SSH,
        os,
        username: RemoteUser::parse(if os == Os::Windows {
            "LAB\\tester"
        } else {
            "tester"
        })?,
        owner: Actor::parse("admin")?,
        password: Some(SealedSecret {
            key_id: "k2026-01".into(),
            alg: "aes-256-gcm".into(),
            nonce: "q9Xc0n1mVb4sYx2E".into(),
            ciphertext: "8KfJm3Lq0ZxV2cR7tY1uWn5bHs4dGe6aPo9iTr2yEw8=".into(),
        }),
        private_key: None,
        host_key: Some(HostKeyFingerprint::parse(format!(
            "SHA256:{:0>43}",
            format!("Lab{index:03}HostKeyQmVuY2htYXJr")
        ))?),
        labels,
    })
}

/// `venv_added` for venv number `index` of a machine.
pub fn venv(machine_id: MachineId, windows: bool, index: usize) -> anyhow::Result<VenvAdded> {
    let path = if windows {
        format!("C:\\Users\\tester\\.runledger\\venvs\\py{index}")
    } else {
        format!("/home/tester/.runledger/venvs/py{index}")
    };
    let requirements = ["pytest>=8", "requests==2.32.3", "pytest-xdist", "pyyaml"];
    Ok(VenvAdded {
        venv_id: VenvId::new(),
        machine_id,
        name: VenvName::parse(format!("py{index}"))?,
        path: RemotePath::parse(path)?,
        python: Line::parse(if index.is_multiple_of(2) {
            "python3.12"
        } else {
            "python3.11"
        })?,
        requirements: requirements
            .into_iter()
            .map(Line::parse)
            .collect::<Result<_, _>>()?,
    })
}

/// `test_case_defined` number `index`.
pub fn test_case(index: usize) -> anyhow::Result<TestCaseDefined> {
    let env: BTreeMap<EnvName, String> = [("PYTHONHASHSEED", "0"), ("LAB_SUITE", "nightly")]
        .into_iter()
        .map(|(name, value)| Ok((EnvName::parse(name)?, value.to_owned())))
        .collect::<anyhow::Result<_>>()?;
    Ok(TestCaseDefined {
        test_case_id: TestCaseId::new(),
        name: MachineName::parse(format!("suite-{index}"))?,
        description: format!("Regression suite {index}: API, storage and scheduler tests"),
        command: Some(Text::parse(format!(
            "pytest -q -n 4 --junitxml=report.xml tests/suite_{index}"
        ))?),
        jenkins: None,
        files: vec![TestFile {
            path: RelativePath::parse("conftest.py")?,
            content: Some("import pytest\n\n@pytest.fixture\ndef lab():\n    return {}\n".into()),
            content_base64: None,
        }],
        env,
        env_overridable: Default::default(),
        timeout_s: 900,
        junit_xml: Some(RelativePath::parse("report.xml")?),
        max_output_bytes: runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES,
        retries: 0,
    })
}

/// One output chunk: 1–20 lines of about 80 characters, short chunks more likely (mean ≈ 7).
pub fn output_chunk(rng: &mut Rng, seq: u64) -> (OutputStream, String) {
    let lines = 1 + (19.0 * rng.unit() * rng.unit()) as usize;
    let stream = if rng.chance(0.1) {
        OutputStream::Stderr
    } else {
        OutputStream::Stdout
    };
    let mut text = String::with_capacity(lines * 82);
    for line in 0..lines {
        let n = rng.below(1000);
        let _ = match (seq, line, rng.below(8)) {
            (1, 0, _) => writeln!(
                text,
                "============================= test session starts =============================="
            ),
            (_, _, 0) => writeln!(
                text,
                "WARNING  urllib3.connectionpool:connectionpool.py:870 Retrying (Retry(total={})) {n}",
                n % 3
            ),
            (_, _, 1) => writeln!(
                text,
                "  File \"C:\\lab\\venvs\\py0\\Lib\\site-packages\\requests\\adapters.py\", line {n}, in send"
            ),
            (_, _, 2) => writeln!(
                text,
                "E       AssertionError: assert 200 == 503\t(response body: {{\"retry\": {n}}})"
            ),
            _ => writeln!(
                text,
                "tests/suite/test_api_{:02}.py::test_case_{n:03}[param-{}] PASSED              [{:>3}%]",
                n % 37,
                n % 7,
                n % 100
            ),
        };
    }
    (stream, text)
}

/// How a run ended: mostly passed, some failed, error, timed out; `cancel` ends it cancelled.
pub fn finished(rng: &mut Rng, run_id: RunId, cancel: Option<&str>) -> RunFinished {
    let roll = rng.unit();
    let status = match (cancel, roll) {
        (Some(_), _) => RunStatus::Cancelled,
        (None, r) if r < 0.84 => RunStatus::Passed,
        (None, r) if r < 0.95 => RunStatus::Failed,
        (None, r) if r < 0.98 => RunStatus::Error,
        (None, _) => RunStatus::TimedOut,
    };
    let total = rng.between(40, 400);
    let failed = if status == RunStatus::Failed {
        rng.between(1, 6)
    } else {
        0
    };
    let skipped = rng.between(0, 12);
    let summary = TestSummary {
        passed: total - failed - skipped,
        failed,
        skipped,
        errors: 0,
        quarantined_failed: 0,
    };
    let tests = (0..failed)
        .map(|i| TestResult {
            name: format!("test_case_{:03}", rng.below(1000)),
            classname: format!("tests.suite.test_api_{i:02}"),
            status: TestOutcome::Failed,
            duration_ms: u64::from(rng.between(5, 4000)),
            message: Some("AssertionError: assert 200 == 503".into()),
        })
        .collect();
    let (exit_code, summary, reason, error_code) = match status {
        RunStatus::Passed => (Some(0), Some(summary), None, None),
        RunStatus::Failed => (Some(1), Some(summary), None, None),
        RunStatus::Error => (
            None,
            None,
            Some("ssh: connection reset by peer".into()),
            Some("ssh_failed".into()),
        ),
        RunStatus::TimedOut => (Some(-9), None, Some("timed out after 900 s".into()), None),
        _ => (Some(-15), None, cancel.map(str::to_owned), None),
    };
    RunFinished {
        run_id,
        status,
        exit_code,
        summary,
        reason,
        error_code,
        tests,
    }
}

/// A refused command: cancelling a run that already `finished`, or starting a run of a test case
/// that does not exist. Returns the command type and why it was refused.
pub fn rejection(rng: &mut Rng, finished: Option<RunId>) -> (&'static str, Rejection) {
    match finished {
        Some(run_id) if rng.chance(0.6) => (
            "cancel_run",
            Rejection::new(
                RejectionCode::RunFinished,
                format!("run {run_id} has already finished (passed)"),
            ),
        ),
        _ => (
            "start_run",
            Rejection::new(
                RejectionCode::UnknownTestCase,
                format!("test case {} does not exist", TestCaseId::new()),
            ),
        ),
    }
}
