//! `runledger audit state`: time travel. The arguments and the printing; folding the log up to
//! the point and the views of what it shows are `runledger_audit`'s.

use super::parse_time;
use anyhow::Context;
use clap::{Args, Subcommand};
use runledger_audit::{Point, StateReport, Subject, lab_at};
use runledger_store::EventStore;
use runledger_types::{MachineId, RunId, VenvId};
use uuid::Uuid;

/// Arguments of `runledger audit state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// A log position (the state right after that event) or an RFC 3339 time (the state after
    /// the last event recorded at or before it). Default: the head of the log.
    #[arg(long, value_name = "POSITION|TIME", value_parser = parse_point)]
    at: Option<Point>,
    #[command(subcommand)]
    target: Target,
}

/// What to show.
#[derive(Debug, Clone, Copy, Subcommand)]
enum Target {
    /// A run: phase and status, test case, user, selector, venv, machine, attempt, executor.
    ///
    /// Example: `runledger audit state --at 120 run 0193a000-0000-7000-8000-00000000000a`
    Run {
        /// The run's id.
        run_id: Uuid,
    },
    /// A venv: machine, name, status, and the run leasing it.
    ///
    /// Example: `runledger audit state venv 0193a000-0000-7000-8000-000000000002`
    Venv {
        /// The venv's id.
        venv_id: Uuid,
    },
    /// A machine's pool: the machine, every venv on it, and the queued runs that could use it.
    ///
    /// Example: `runledger audit state --at 2026-11-24T10:00:00Z pool 0193a000-0000-7000-8000-000000000001`
    Pool {
        /// The machine's id.
        machine_id: Uuid,
    },
}

impl From<Target> for Subject {
    fn from(target: Target) -> Self {
        match target {
            Target::Run { run_id } => Subject::Run(RunId(run_id)),
            Target::Venv { venv_id } => Subject::Venv(VenvId(venv_id)),
            Target::Pool { machine_id } => Subject::Pool(MachineId(machine_id)),
        }
    }
}

fn parse_point(raw: &str) -> Result<Point, String> {
    match raw.parse::<i64>() {
        Ok(position) if position >= 0 => Ok(Point::Position(position)),
        Ok(_) => Err("a log position is 0 or more".into()),
        Err(_) => parse_time(raw)
            .map(Point::Time)
            .map_err(|err| format!("not a log position (e.g. 42), and {err}")),
    }
}

/// Prints the target's state at the chosen point as JSON; fails when it did not exist then.
pub async fn state(store: &EventStore, args: &StateArgs) -> anyhow::Result<()> {
    let snapshot = lab_at(store, args.at.unwrap_or(Point::Head)).await?;
    let subject = Subject::from(args.target);
    let report = StateReport::new(&snapshot, subject)
        .with_context(|| format!("no {subject} at position {}", snapshot.as_of.position))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn points_are_positions_or_rfc3339_times() {
        assert_eq!(parse_point("42").unwrap(), Point::Position(42));
        let time = parse_point("2026-11-24T10:00:00+01:00").unwrap();
        let expected = DateTime::parse_from_rfc3339("2026-11-24T09:00:00Z").unwrap();
        assert_eq!(time, Point::Time(expected.with_timezone(&Utc)));
        assert!(parse_point("-1").is_err());
        let err = parse_point("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
