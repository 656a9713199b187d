//! The CLI's commands, typed: each `add`, `passwd`, `start` or `cancel` builds the command's
//! payload type from its arguments. A value the payload type refuses stops the CLI with the
//! message the handler would have answered (`<type> rejected: invalid_payload: payload.<field>:
//! ...`), before anything is sent.

use crate::lab::{JenkinsArgs, MachineAdd};
use anyhow::Context;
use runledger_types::command::{
    CommandPayload, CommandType, DefineTestCase, RegisterMachine, StartRun, TestFile,
};
use runledger_types::jenkins::{JenkinsCredentials, JenkinsJob};
use runledger_types::{MachineId, OutgoingSecret, RunId, TestCaseId, VenvId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use uuid::Uuid;

/// `raw` as the payload field `field` of a `C`, or the handler's refusal of it.
pub fn field<C: CommandPayload, T: DeserializeOwned>(
    field: &str,
    raw: impl Into<Value>,
) -> anyhow::Result<T> {
    serde_json::from_value(raw.into()).map_err(|err| refused(C::TYPE, field, err))
}

/// Each of `raws` as an entry of the payload field `field` of a `C`.
pub fn fields<C: CommandPayload, T: DeserializeOwned + Ord>(
    name: &str,
    raws: Vec<String>,
) -> anyhow::Result<BTreeSet<T>> {
    raws.into_iter()
        .map(|raw| field::<C, T>(name, raw))
        .collect()
}

/// `env` pairs as a payload's `env` object.
pub fn env<C: CommandPayload, N: DeserializeOwned + Ord>(
    pairs: Vec<(String, String)>,
) -> anyhow::Result<BTreeMap<N, String>> {
    pairs
        .into_iter()
        .map(|(name, value)| Ok((field::<C, N>("env", name)?, value)))
        .collect()
}

fn refused(kind: CommandType, field: &str, err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "{} rejected: invalid_payload: payload.{field}: {err}",
        kind.as_str()
    )
}

/// A clear-text secret read from the environment variable `name`.
pub fn secret_from_env(name: &str) -> anyhow::Result<OutgoingSecret> {
    let secret = std::env::var(name).with_context(|| format!("set {name} to the secret"))?;
    Ok(OutgoingSecret::new(secret))
}

type NewMachine = RegisterMachine<OutgoingSecret>;

/// `register_machine` from `runledger machine add`.
pub fn register_machine(add: &MachineAdd, machine_id: Uuid) -> anyhow::Result<NewMachine> {
    let private_key = match &add.key_file {
        Some(path) => Some(OutgoingSecret::new(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        )),
        None => None,
    };
    let password = add
        .password_env
        .as_deref()
        .map(secret_from_env)
        .transpose()?;
    Ok(RegisterMachine {
        machine_id: MachineId::from(machine_id),
        name: field::<NewMachine, _>("name", add.name.clone())?,
        host: field::<NewMachine, _>("host", add.host.clone())?,
        port: field::<NewMachine, _>("port", add.port)?,
        os: field::<NewMachine, _>("os", add.os.clone())?,
        username: field::<NewMachine, _>("username", add.user.clone())?,
        password,
        private_key,
        host_key: add
            .host_key
            .clone()
            .map(|key| field::<NewMachine, _>("host_key", key))
            .transpose()?,
        labels: fields::<NewMachine, _>("labels", add.labels.clone())?,
    })
}

/// What `runledger test-case add` was given.
pub struct TestCaseArgs {
    /// The test case's name.
    pub name: String,
    /// Its command, or none for a Jenkins job.
    pub command: Option<String>,
    /// The Jenkins job instead of a command.
    pub jenkins: JenkinsArgs,
    /// A directory whose files are copied into the working directory.
    pub dir: Option<std::path::PathBuf>,
    /// The JUnit report's path.
    pub junit_xml: Option<String>,
    /// Seconds before the run times out.
    pub timeout_s: u64,
    /// Retries of infrastructure errors.
    pub retries: u32,
    /// The test case's environment.
    pub env: Vec<(String, String)>,
    /// The names a run may set.
    pub env_overridable: Vec<String>,
    /// Most bytes of output recorded.
    pub max_output_bytes: u64,
}

type NewTestCase = DefineTestCase<OutgoingSecret>;

/// `define_test_case` from `runledger test-case add`.
pub fn define_test_case(args: TestCaseArgs, test_case_id: Uuid) -> anyhow::Result<NewTestCase> {
    let jenkins = jenkins_job(&args.jenkins)?;
    let (command, files) = match (args.command, &jenkins) {
        (Some(command), _) => {
            let command = field::<NewTestCase, _>("command", command)?;
            (Some(command), files(args.dir.as_deref())?)
        }
        (None, Some(_)) => (None, Vec::new()),
        (None, None) => anyhow::bail!("give --command or --jenkins-url and --jenkins-job"),
    };
    Ok(DefineTestCase {
        test_case_id: TestCaseId::from(test_case_id),
        name: field::<NewTestCase, _>("name", args.name)?,
        description: String::new(),
        command,
        jenkins,
        files,
        env: env::<NewTestCase, _>(args.env)?,
        env_overridable: fields::<NewTestCase, _>("env_overridable", args.env_overridable)?,
        timeout_s: field::<NewTestCase, _>("timeout_s", args.timeout_s)?,
        junit_xml: args
            .junit_xml
            .map(|path| field::<NewTestCase, _>("junit_xml", path))
            .transpose()?,
        retries: args.retries,
        max_output_bytes: args.max_output_bytes,
    })
}

/// The files of `dir` (not its subdirectories), in name order.
fn files(dir: Option<&Path>) -> anyhow::Result<Vec<TestFile>> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    entries
        .iter()
        .map(|entry| {
            let content = std::fs::read_to_string(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            let path = entry.file_name().to_string_lossy().into_owned();
            Ok(TestFile {
                path: field::<NewTestCase, _>("files.path", path)?,
                content: Some(content),
                content_base64: None,
            })
        })
        .collect()
}

/// The payload's `jenkins` job, if one is named.
fn jenkins_job(args: &JenkinsArgs) -> anyhow::Result<Option<JenkinsJob<OutgoingSecret>>> {
    let (Some(url), Some(job)) = (&args.jenkins_url, &args.jenkins_job) else {
        return Ok(None);
    };
    let mut parameters = BTreeMap::new();
    for pair in &args.jenkins_params {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--jenkins-param {pair:?}: expected NAME=VALUE"))?;
        let name = field::<NewTestCase, _>("jenkins.parameters", name.to_owned())?;
        parameters.insert(name, value.to_owned());
    }
    let credentials = match (&args.jenkins_user, &args.jenkins_token_env) {
        (Some(user), Some(variable)) => {
            let token = std::env::var(variable)
                .with_context(|| format!("reading the API token from ${variable}"))?;
            Some(JenkinsCredentials {
                username: user.clone(),
                api_token: OutgoingSecret::new(token),
            })
        }
        _ => None,
    };
    Ok(Some(JenkinsJob {
        url: field::<NewTestCase, _>("jenkins.url", url.clone())?,
        job: field::<NewTestCase, _>("jenkins.job", job.clone())?,
        parameters,
        credentials,
    }))
}

/// What `runledger run start` asks for.
pub struct RunRequest {
    /// The test case.
    pub test_case_id: Uuid,
    /// Only this machine.
    pub machine: Option<Uuid>,
    /// Only machines with these labels.
    pub labels: Vec<String>,
    /// Exactly this venv.
    pub venv: Option<Uuid>,
    /// Environment overrides.
    pub env: Vec<(String, String)>,
}

/// `start_run` from `runledger run start`.
pub fn start_run(request: RunRequest, run_id: Uuid) -> anyhow::Result<StartRun> {
    Ok(StartRun {
        run_id: RunId::from(run_id),
        test_case_id: TestCaseId::from(request.test_case_id),
        machine_id: request.machine.map(MachineId::from),
        labels: fields::<StartRun, _>("labels", request.labels)?,
        venv_id: request.venv.map(VenvId::from),
        env: env::<StartRun, _>(request.env)?,
        rerun_of: None,
        only: None,
        tests: Vec::new(),
    })
}
