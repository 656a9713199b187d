//! `runledger user|machine|venv|test-case ...`: manage the lab from a terminal. Each `add` is the
//! matching command sent over NATS (the handler decides who may); each `list` reads the read
//! models.

use crate::send::command_sender;
use crate::settings::Settings;
use anyhow::Context;
use clap::{Args, Subcommand};
use runledger_types::CommandId;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// Who asks, for every lab command.
#[derive(Debug, Args)]
pub struct Actor {
    /// Who asks (a registered admin or member, or a system name).
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
}

/// `runledger user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Register a user; the first admin is registered by any system actor.
    ///
    /// Example: `runledger user add ada --role admin --password-env ADA_PASSWORD`
    Add {
        /// The username.
        username: String,
        /// `admin` or `member`.
        #[arg(long, default_value = "member")]
        role: String,
        /// The environment variable holding the password (never on the command line).
        #[arg(long, default_value = "RUNLEDGER_NEW_PASSWORD")]
        password_env: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Disable a user (admins): they can no longer log in, and every token of theirs stops
    /// working on every gateway at once.
    ///
    /// Example: `runledger user disable mia --actor ada`
    Disable {
        /// The username.
        username: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Change a user's password (the user themselves, or an admin for anyone); every token of
    /// the user stops working, so they log in again with the new one.
    ///
    /// Example: `MIA_PASSWORD=... runledger user passwd mia --password-env MIA_PASSWORD --actor ada`
    Passwd {
        /// The username.
        username: String,
        /// The environment variable holding the new password (never on the command line).
        #[arg(long, default_value = "RUNLEDGER_NEW_PASSWORD")]
        password_env: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Revoke every token of a user (admins), e.g. after a laptop was lost; they may log in
    /// again.
    ///
    /// Example: `runledger user revoke-tokens mia --actor ada`
    RevokeTokens {
        /// The username.
        username: String,
        #[command(flatten)]
        actor: Actor,
    },
}

/// `runledger machine ...`
#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// Register a machine reached over SSH (or `--host local`).
    ///
    /// Example: `runledger machine add lab-01 --host 10.0.0.5 --user tester --key-file ~/.ssh/lab --label linux`
    Add(Box<MachineAdd>),
    /// The machines, one line each.
    ///
    /// Example: `runledger machine list`
    List,
}

/// `runledger machine add`
#[derive(Debug, Args)]
pub struct MachineAdd {
    /// A name for it.
    pub name: String,
    /// IP, DNS name, or `local`.
    #[arg(long)]
    pub host: String,
    /// SSH port.
    #[arg(long, default_value_t = 22)]
    pub port: u16,
    /// `linux` or `windows`.
    #[arg(long, default_value = "linux")]
    pub os: String,
    /// The remote user.
    #[arg(long)]
    pub user: String,
    /// An OpenSSH private key file.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// The environment variable holding the SSH password.
    #[arg(long)]
    pub password_env: Option<String>,
    /// The pinned host key (`SHA256:...`); without it the first key seen is pinned.
    #[arg(long)]
    pub host_key: Option<String>,
    /// A label (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    #[command(flatten)]
    pub actor: Actor,
}

/// `runledger venv ...`
#[derive(Debug, Subcommand)]
pub enum VenvCommand {
    /// Add a venv on a machine; an executor provisions it.
    ///
    /// Example: `runledger venv add <MACHINE_ID> py311 --python python3.11 --requirement pytest`
    Add {
        /// The machine.
        machine_id: Uuid,
        /// A name, unique on the machine.
        name: String,
        /// The interpreter that creates it.
        #[arg(long, default_value = "python3")]
        python: String,
        /// A pip requirement (repeatable).
        #[arg(long = "requirement")]
        requirements: Vec<String>,
        #[command(flatten)]
        actor: Actor,
    },
    /// The venv pool, one line each.
    ///
    /// Example: `runledger venv list`
    List,
}

/// `runledger test-case ...`
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum TestCaseCommand {
    /// Define a test case from a directory: its files are uploaded into every run. Or, with
    /// `--jenkins-url` and `--jenkins-job` instead of `--command`, a test case whose runs
    /// trigger a Jenkins job.
    ///
    /// Example: `runledger test-case add smoke --command "python -m pytest -q --junitxml=report.xml" --junit-xml report.xml --dir examples/passing`
    ///
    /// Example: `runledger test-case add api --command "python -m pytest -q tests/api" --env SUITE=api --env-overridable TARGET_URL`
    ///
    /// Example: `JENKINS_TOKEN=... runledger test-case add nightly --jenkins-url https://jenkins.lab/ --jenkins-job team/nightly --jenkins-param BRANCH=main --jenkins-user ci --jenkins-token-env JENKINS_TOKEN`
    Add {
        /// A name.
        name: String,
        /// The command, run inside the venv.
        #[arg(
            long,
            required_unless_present = "jenkins_job",
            conflicts_with = "jenkins_job"
        )]
        command: Option<String>,
        #[command(flatten)]
        jenkins: JenkinsArgs,
        /// A directory whose files (not subdirectories) go into every run's working directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The JUnit XML report the command writes.
        #[arg(long)]
        junit_xml: Option<String>,
        /// Seconds before the run is ended as `timed_out`.
        #[arg(long, default_value_t = 3600)]
        timeout_s: u64,
        /// Attempts after an infrastructure error.
        #[arg(long, default_value_t = 0)]
        retries: u32,
        /// NAME=VALUE in the command's environment (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = crate::run::parse_env)]
        env: Vec<(String, String)>,
        /// A variable runs may set with `--env` (repeatable; for a Jenkins job: a build
        /// parameter runs may override). Loader and interpreter variables (`LD_*`, `PATH`,
        /// `PYTHON*`, `BASH_ENV`, ...) are refused.
        #[arg(long = "env-overridable", value_name = "NAME")]
        env_overridable: Vec<String>,
        /// Most bytes of output a run records; past it output is dropped with a note.
        #[arg(long, default_value_t = runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES)]
        max_output_bytes: u64,
        #[command(flatten)]
        actor: Actor,
    },
    /// The test cases, one line each.
    ///
    /// Example: `runledger test-case list`
    List,
}

/// The Jenkins job a test case triggers instead of a command.
#[derive(Debug, Args)]
pub struct JenkinsArgs {
    /// The Jenkins server's URL.
    #[arg(long, requires = "jenkins_job")]
    jenkins_url: Option<String>,
    /// The job's full name (`folder/job`).
    #[arg(long, requires = "jenkins_url")]
    jenkins_job: Option<String>,
    /// A build parameter, `NAME=VALUE` (repeatable).
    #[arg(
        long = "jenkins-param",
        value_name = "NAME=VALUE",
        requires = "jenkins_job"
    )]
    jenkins_params: Vec<String>,
    /// The Jenkins user the API token belongs to.
    #[arg(long, requires = "jenkins_token_env")]
    jenkins_user: Option<String>,
    /// The environment variable holding the user's API token (never on the command line).
    #[arg(long, requires = "jenkins_user")]
    jenkins_token_env: Option<String>,
}

impl JenkinsArgs {
    /// The payload's `jenkins` object, if a job is named.
    fn payload(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let (Some(url), Some(job)) = (&self.jenkins_url, &self.jenkins_job) else {
            return Ok(None);
        };
        let mut parameters = serde_json::Map::new();
        for pair in &self.jenkins_params {
            let (name, value) = pair
                .split_once('=')
                .with_context(|| format!("--jenkins-param {pair:?}: expected NAME=VALUE"))?;
            parameters.insert(name.to_owned(), json!(value));
        }
        let mut jenkins = json!({"url": url, "job": job, "parameters": parameters});
        if let (Some(user), Some(variable)) = (&self.jenkins_user, &self.jenkins_token_env) {
            let token = std::env::var(variable)
                .with_context(|| format!("reading the API token from ${variable}"))?;
            jenkins["credentials"] = json!({"username": user, "api_token": token});
        }
        Ok(Some(jenkins))
    }
}

/// Sends `command_type` and prints the new thing's id; fails on a rejection.
async fn submit(
    settings: &Settings,
    actor: &Actor,
    command_type: &str,
    payload: Value,
    id: &str,
) -> anyhow::Result<()> {
    let sender = command_sender(settings, Duration::from_secs(10)).await?;
    let outcome = sender
        .send(CommandId::new(), command_type, &actor.actor, payload)
        .await
        .context("no outcome: is `runledger serve --components handler` running?")?;
    if let Some(error) = outcome.error {
        anyhow::bail!("{command_type} rejected: {}: {}", error.code, error.message);
    }
    println!("{id}");
    Ok(())
}

fn secret_from_env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("set {name} to the secret"))
}

/// `runledger user ...`
pub async fn user(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    let (actor, kind, payload, username) = match command {
        UserCommand::Add {
            username,
            role,
            password_env,
            actor,
        } => {
            let password = secret_from_env(&password_env)?;
            let payload = json!({"username": username, "role": role, "password": password});
            (actor, "register_user", payload, username)
        }
        UserCommand::Disable { username, actor } => (
            actor,
            "disable_user",
            json!({"username": username}),
            username,
        ),
        UserCommand::Passwd {
            username,
            password_env,
            actor,
        } => {
            let password = secret_from_env(&password_env)?;
            let payload = json!({"username": username, "password": password});
            (actor, "change_password", payload, username)
        }
        UserCommand::RevokeTokens { username, actor } => (
            actor,
            "revoke_tokens",
            json!({"username": username}),
            username,
        ),
    };
    submit(settings, &actor, kind, payload, &username).await
}

/// `runledger machine ...`
pub async fn machine(settings: &Settings, command: MachineCommand) -> anyhow::Result<()> {
    let add = match command {
        MachineCommand::List => {
            return crate::listings::machines(settings).await;
        }
        MachineCommand::Add(add) => add,
    };
    let machine_id = Uuid::now_v7();
    let mut payload = Map::new();
    payload.insert("machine_id".into(), json!(machine_id));
    payload.insert("name".into(), json!(add.name));
    payload.insert("host".into(), json!(add.host));
    payload.insert("port".into(), json!(add.port));
    payload.insert("os".into(), json!(add.os));
    payload.insert("username".into(), json!(add.user));
    payload.insert("labels".into(), json!(add.labels));
    if let Some(path) = &add.key_file {
        let key =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        payload.insert("private_key".into(), json!(key));
    }
    if let Some(name) = &add.password_env {
        payload.insert("password".into(), json!(secret_from_env(name)?));
    }
    if let Some(key) = &add.host_key {
        payload.insert("host_key".into(), json!(key));
    }
    let id = machine_id.to_string();
    submit(
        settings,
        &add.actor,
        "register_machine",
        Value::Object(payload),
        &id,
    )
    .await
}

/// `runledger venv ...`
pub async fn venv(settings: &Settings, command: VenvCommand) -> anyhow::Result<()> {
    match command {
        VenvCommand::List => crate::listings::venvs(settings).await,
        VenvCommand::Add {
            machine_id,
            name,
            python,
            requirements,
            actor,
        } => {
            let venv_id = Uuid::now_v7();
            let payload = json!({"venv_id": venv_id, "machine_id": machine_id, "name": name,
                                 "python": python, "requirements": requirements});
            submit(settings, &actor, "add_venv", payload, &venv_id.to_string()).await
        }
    }
}

/// `runledger test-case ...`
pub async fn test_case(settings: &Settings, command: TestCaseCommand) -> anyhow::Result<()> {
    match command {
        TestCaseCommand::List => crate::listings::test_cases(settings).await,
        TestCaseCommand::Add {
            name,
            command,
            jenkins,
            dir,
            junit_xml,
            timeout_s,
            retries,
            env,
            env_overridable,
            max_output_bytes,
            actor,
        } => {
            let mut files = Vec::new();
            if let Some(dir) = &dir {
                let mut entries: Vec<_> = std::fs::read_dir(dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .filter_map(Result::ok)
                    .filter(|entry| entry.path().is_file())
                    .collect();
                entries.sort_by_key(std::fs::DirEntry::file_name);
                for entry in entries {
                    let content = std::fs::read_to_string(entry.path())
                        .with_context(|| format!("reading {}", entry.path().display()))?;
                    let path = entry.file_name().to_string_lossy().into_owned();
                    files.push(json!({"path": path, "content": content}));
                }
            }
            let test_case_id = Uuid::now_v7();
            let env: Map<String, Value> = env
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect();
            let mut payload = json!({"test_case_id": test_case_id, "name": name,
                                     "timeout_s": timeout_s, "retries": retries,
                                     "env_overridable": env_overridable,
                                     "max_output_bytes": max_output_bytes});
            if !env.is_empty() {
                payload["env"] = Value::Object(env);
            }
            match (command, jenkins.payload()?) {
                (Some(command), _) => {
                    payload["command"] = json!(command);
                    payload["files"] = json!(files);
                }
                (None, Some(job)) => payload["jenkins"] = job,
                (None, None) => anyhow::bail!("give --command or --jenkins-url and --jenkins-job"),
            }
            if let Some(junit) = junit_xml {
                payload["junit_xml"] = json!(junit);
            }
            submit(
                settings,
                &actor,
                "define_test_case",
                payload,
                &test_case_id.to_string(),
            )
            .await
        }
    }
}
