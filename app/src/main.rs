//! `runledger`: one binary for every component. `serve` runs any subset of handler, projector,
//! executor and gateway in one process; `migrate` prepares the database; `bus` shows, checks and
//! resets the prefix's NATS streams; `send` publishes one command and prints its outcome.

mod audit;
mod bus;
mod cli;
mod database;
mod db;
mod groups;
mod insights;
mod lab;
mod listings;
mod payloads;
mod projections;
mod run;
mod send;
mod serve;
mod settings;
mod telemetry;

use clap::Parser;

/// mimalloc: the handler allocates many small JSON values per command; glibc's malloc spent a
/// third of the handler's CPU time in the intake benchmark. Version 2 (the `v2` feature): v3
/// keeps freed pages for a second before returning them, which held the handler's peak RSS at
/// 209–234 MiB in the same benchmark against 172–176 MiB with v2, at the same speed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    // `send` and `audit` print data on stdout; their own logging stays quiet unless asked for.
    let default_level = match cli.command {
        cli::Command::Send(_)
        | cli::Command::Bus(_)
        | cli::Command::Audit(_)
        | cli::Command::Projections(_)
        | cli::Command::Run(_)
        | cli::Command::Group(_)
        | cli::Command::Tests(_)
        | cli::Command::User(_)
        | cli::Command::Machine(_)
        | cli::Command::Venv(_)
        | cli::Command::TestCase(_) => "warn",
        _ => "info",
    };
    let _telemetry = telemetry::init(&cli.settings.log_format, default_level)?;
    match cli.command {
        cli::Command::Serve(args) => serve::serve(&cli.settings, &args).await,
        cli::Command::Migrate => serve::migrate(&cli.settings).await,
        cli::Command::Db(command) => db::run(&cli.settings, command).await,
        cli::Command::Bus(command) => bus::run(&cli.settings, command).await,
        cli::Command::Send(args) => send::send(&cli.settings, &args).await,
        cli::Command::Audit(args) => audit::audit(&cli.settings, &args).await,
        cli::Command::Projections(command) => projections::run(&cli.settings, command).await,
        cli::Command::Run(command) => run::run(&cli.settings, command).await,
        cli::Command::Group(command) => groups::run(&cli.settings, command).await,
        cli::Command::Tests(command) => insights::run(&cli.settings, command).await,
        cli::Command::User(command) => lab::user(&cli.settings, command).await,
        cli::Command::Machine(command) => lab::machine(&cli.settings, command).await,
        cli::Command::Venv(command) => lab::venv(&cli.settings, command).await,
        cli::Command::TestCase(command) => lab::test_case(&cli.settings, command).await,
    }
}
