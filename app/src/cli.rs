//! Command-line interface.

use crate::settings::Settings;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::time::Duration;

/// runledger: an event-sourced service that runs test suites on remote machines.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run components (all of them by default).
    ///
    /// Example: `runledger serve --components handler`
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    ///
    /// Example: `DATABASE_URL=postgres://localhost/runledger runledger migrate`
    Migrate,
    /// Set up the database's least-privilege roles (run as the owner, after `migrate`).
    ///
    /// Example: `runledger db grant --gateway-password-file /run/secrets/gateway-db-password`
    #[command(subcommand)]
    Db(crate::db::DbCommand),
    /// The NATS streams of the prefix: which log they belong to, checking them, resetting them.
    ///
    /// Example: `runledger bus status`, `runledger bus reset`
    #[command(subcommand)]
    Bus(crate::bus::BusCommand),
    /// Publish one command over NATS and print its outcome.
    ///
    /// Example: `runledger send register_user '{"username":"ada","role":"admin","password":"correct-horse"}'`
    Send(SendArgs),
    /// Read the event log: who asked for what, when, and what happened; past states; integrity.
    ///
    /// Example: `runledger audit --actor ada --since 2026-11-24T00:00:00Z --format table`
    Audit(crate::audit::AuditArgs),
    /// Inspect and rebuild the read models.
    ///
    /// Example: `runledger projections rebuild runs venvs`
    #[command(subcommand)]
    Projections(crate::projections::ProjectionsCommand),
    /// Start, cancel, list, show and follow runs.
    ///
    /// Example: `runledger run start <TEST_CASE_ID> --wait --follow --junit-out report.xml`
    #[command(subcommand)]
    Run(crate::run::RunCommand),
    /// Run groups: a suite split across the pool by past durations, or a matrix, with one
    /// verdict and one JUnit report.
    ///
    /// Example: `runledger group start <TEST_CASE_ID> --shards 8 --follow --junit-out report.xml`
    #[command(subcommand)]
    Group(crate::groups::GroupCommand),
    /// Tests across runs: which fail, which are flaky and why, their history, a test case's trend.
    ///
    /// Example: `runledger tests list --flaky`, `runledger tests show <TEST_ID>`
    #[command(subcommand)]
    Tests(crate::insights::TestsCommand),
    /// Register users.
    ///
    /// Example: `RUNLEDGER_NEW_PASSWORD=... runledger user add ada --role admin`
    #[command(subcommand)]
    User(crate::lab::UserCommand),
    /// Register and list machines.
    ///
    /// Example: `runledger machine add lab-01 --host 10.0.0.5 --user tester --key-file ~/.ssh/lab`
    #[command(subcommand)]
    Machine(crate::lab::MachineCommand),
    /// Add and list venvs.
    ///
    /// Example: `runledger venv add <MACHINE_ID> py311 --requirement pytest`
    #[command(subcommand)]
    Venv(crate::lab::VenvCommand),
    /// Define and list test cases.
    ///
    /// Example: `runledger test-case add smoke --command "python -m pytest -q" --dir examples/passing`
    #[command(subcommand)]
    TestCase(crate::lab::TestCaseCommand),
}

/// The components `serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Component {
    /// Command intake and outbox relay: the only writer of the log.
    Handler,
    /// Keeps the read models current from the log.
    Projector,
    /// Runs tests on the lab's machines (over SSH, or locally) and reports back.
    Executor,
    /// Serves the HTTP API, live logs and the dashboard.
    Gateway,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Components to run, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "handler,projector,executor,gateway"
    )]
    pub components: Vec<Component>,
    /// Development mode: without RUNLEDGER_SECRET_KEY, use a fixed, public, insecure key.
    #[arg(long)]
    pub dev: bool,
    /// Most commands decided and appended in one transaction.
    #[arg(long, env = "RUNLEDGER_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,
    /// Seconds an executor may go without a heartbeat before its runs end as `error`
    /// (`executor_lost`) or are retried; executors send heartbeats every sixth of it.
    #[arg(long, env = "RUNLEDGER_EXECUTOR_LEASE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub executor_lease_s: u64,
    /// Most runs one executor process drives at once.
    #[arg(long, env = "RUNLEDGER_EXECUTOR_MAX_RUNS", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub executor_max_runs: u64,
    /// Let this process's executor run work on `local` machines (host `local`: child processes
    /// on this host, where the credential key is). Always on with `--dev`.
    #[arg(long, env = "RUNLEDGER_EXECUTOR_ALLOW_LOCAL", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub executor_allow_local: bool,
    /// Also serve Prometheus `/metrics` on this address (for processes without a gateway, whose
    /// port serves `/metrics` already), e.g. `127.0.0.1:9464`.
    #[arg(long, env = "RUNLEDGER_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Require `Authorization: Bearer <token>` on `/metrics` (the gateway's and the standalone
    /// one); unset, `/metrics` is open.
    #[arg(long, env = "RUNLEDGER_METRICS_TOKEN", hide_env_values = true, value_parser = secret)]
    pub metrics_token: Option<runledger_types::SecretString>,
    /// Count failed logins by the last `X-Forwarded-For` address (the one your proxy appends)
    /// instead of the TCP peer. Only behind a proxy that sets it: otherwise any client picks
    /// its own address and escapes the login limit.
    #[arg(long, env = "RUNLEDGER_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Command type, e.g. `start_run`.
    pub command_type: String,
    /// The payload as JSON.
    pub payload: String,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
    /// How long to wait for the outcome.
    #[arg(long, default_value = "10s", value_parser = humantime_secs)]
    pub timeout: Duration,
}

/// A secret flag's value, kept out of `Debug` output.
fn secret(raw: &str) -> Result<runledger_types::SecretString, String> {
    Ok(runledger_types::SecretString::new(raw))
}

fn humantime_secs(raw: &str) -> Result<Duration, String> {
    let digits = raw.strip_suffix('s').unwrap_or(raw);
    digits
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected seconds such as 10s, got {raw:?}"))
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command a user can type has `--help` with an example.
    #[test]
    fn every_subcommand_has_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                let help = sub
                    .get_long_about()
                    .or(sub.get_about())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let example = help.split("Example: `").skip(1).any(|rest| {
                    rest.split('`')
                        .next()
                        .is_some_and(|e| e.contains("runledger"))
                });
                if !example {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        let cli = Cli::command();
        cli.clone().debug_assert();
        walk(&cli, "runledger", &mut missing);
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }
}
