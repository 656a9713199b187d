//! `runledger user|machine|venv|test-case ...`: manage the lab from a terminal. Each `add` is the
//! matching command sent over NATS (the handler decides who may); each `list` reads the read
//! models.

use crate::payloads::{self, field, secret_from_env};
use crate::settings::Settings;
use clap::{Args, Subcommand};
use runledger_types::command::{
    AddVenv, ChangePassword, CommandPayload, DisableUser, RegisterUser, RevokeTokens,
};
use runledger_types::{MachineId, OutgoingSecret, VenvId};
use std::path::PathBuf;
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
    pub(crate) jenkins_url: Option<String>,
    /// The job's full name (`folder/job`).
    #[arg(long, requires = "jenkins_url")]
    pub(crate) jenkins_job: Option<String>,
    /// A build parameter, `NAME=VALUE` (repeatable).
    #[arg(
        long = "jenkins-param",
        value_name = "NAME=VALUE",
        requires = "jenkins_job"
    )]
    pub(crate) jenkins_params: Vec<String>,
    /// The Jenkins user the API token belongs to.
    #[arg(long, requires = "jenkins_token_env")]
    pub(crate) jenkins_user: Option<String>,
    /// The environment variable holding the user's API token (never on the command line).
    #[arg(long, requires = "jenkins_user")]
    pub(crate) jenkins_token_env: Option<String>,
}

/// Sends `command` and prints the new thing's id; fails on a rejection.
async fn submit<C: CommandPayload>(
    settings: &Settings,
    actor: &Actor,
    command: &C,
    id: &str,
) -> anyhow::Result<()> {
    crate::send::send_accepted(settings, &actor.actor, command).await?;
    println!("{id}");
    Ok(())
}

/// `runledger user ...`
pub async fn user(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            username,
            role,
            password_env,
            actor,
        } => {
            let command = RegisterUser {
                username: field::<RegisterUser<OutgoingSecret>, _>("username", username.clone())?,
                role: field::<RegisterUser<OutgoingSecret>, _>("role", role)?,
                password: secret_from_env(&password_env)?,
            };
            submit(settings, &actor, &command, &username).await
        }
        UserCommand::Disable { username, actor } => {
            let command = DisableUser {
                username: field::<DisableUser, _>("username", username.clone())?,
            };
            submit(settings, &actor, &command, &username).await
        }
        UserCommand::Passwd {
            username,
            password_env,
            actor,
        } => {
            let command = ChangePassword {
                username: field::<ChangePassword<OutgoingSecret>, _>("username", username.clone())?,
                password: secret_from_env(&password_env)?,
            };
            submit(settings, &actor, &command, &username).await
        }
        UserCommand::RevokeTokens { username, actor } => {
            let command = RevokeTokens {
                username: field::<RevokeTokens, _>("username", username.clone())?,
            };
            submit(settings, &actor, &command, &username).await
        }
    }
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
    let command = payloads::register_machine(&add, machine_id)?;
    submit(settings, &add.actor, &command, &machine_id.to_string()).await
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
            let command = AddVenv {
                venv_id: VenvId::from(venv_id),
                machine_id: MachineId::from(machine_id),
                name: field::<AddVenv, _>("name", name)?,
                path: None,
                python: field::<AddVenv, _>("python", python)?,
                requirements: requirements
                    .into_iter()
                    .map(|line| field::<AddVenv, _>("requirements", line))
                    .collect::<anyhow::Result<_>>()?,
            };
            submit(settings, &actor, &command, &venv_id.to_string()).await
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
            let args = payloads::TestCaseArgs {
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
            };
            let test_case_id = Uuid::now_v7();
            let command = payloads::define_test_case(args, test_case_id)?;
            submit(settings, &actor, &command, &test_case_id.to_string()).await
        }
    }
}
