//! `runledger audit state`: time travel. Folds the log from position 1 up to a past position (or
//! time) with the domain's own `evolve`, then prints one run, venv or pool as it was then.

use super::view::{AsOf, PoolView, RunView, VenvView};
use super::{PAGE, parse_time};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use runledger_domain::{Lab, evolve};
use runledger_store::EventStore;
use runledger_types::{MachineId, RunId, VenvId};
use serde::Serialize;
use std::fmt;
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

/// A point in the log's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// Right after this position.
    Position(i64),
    /// Right after the last event recorded at or before this time.
    Time(DateTime<Utc>),
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
    let through = match args.at {
        None => store.head().await?,
        Some(Point::Position(position)) => position,
        Some(Point::Time(time)) => store.position_at(time).await?,
    };
    let (lab, as_of) = fold(store, through).await?;
    let shown = args
        .target
        .view(&lab)
        .with_context(|| format!("no {} at position {}", args.target, as_of.position))?;
    let report = Report { as_of, shown };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

impl Target {
    /// The view of the target in `lab`, if it exists there.
    fn view(self, lab: &Lab) -> Option<Shown<'_>> {
        match self {
            Self::Run { run_id } => {
                let run_id = RunId(run_id);
                lab.run(&run_id)
                    .map(|run| Shown::Run(RunView::new(run_id, run)))
            }
            Self::Venv { venv_id } => {
                let venv_id = VenvId(venv_id);
                lab.venv(&venv_id)
                    .map(|venv| Shown::Venv(VenvView::new(venv_id, venv)))
            }
            Self::Pool { machine_id } => PoolView::new(lab, MachineId(machine_id)).map(Shown::Pool),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run { run_id } => write!(f, "run {run_id}"),
            Self::Venv { venv_id } => write!(f, "venv {venv_id}"),
            Self::Pool { machine_id } => write!(f, "machine {machine_id}"),
        }
    }
}

/// What `audit state` prints: `{"as_of": {...}, "run": {...}}` (or `venv`, `pool`).
#[derive(Debug, Serialize)]
struct Report<'a> {
    as_of: AsOf,
    #[serde(flatten)]
    shown: Shown<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Shown<'a> {
    Run(RunView<'a>),
    Venv(VenvView<'a>),
    Pool(PoolView<'a>),
}

/// The lab folded from position 1 through `through` (or the head, if that is smaller), and the
/// last event folded. Reads raw pages: each event's data is decoded once, straight from its text.
async fn fold(store: &EventStore, through: i64) -> anyhow::Result<(Lab, AsOf)> {
    let mut lab = Lab::new();
    let mut as_of = AsOf::default();
    while as_of.position < through {
        let page = store.read_after_raw(as_of.position, PAGE).await?;
        let done = page.len() < usize::try_from(PAGE)?
            || page.last().is_some_and(|record| record.position >= through);
        for record in page.iter().take_while(|record| record.position <= through) {
            evolve(&mut lab, &record.decode()?);
            lab.set_position(record.position);
            as_of = AsOf {
                position: record.position,
                recorded_at: Some(record.recorded_at),
            };
        }
        if done {
            break;
        }
    }
    Ok((lab, as_of))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
