//! What `runledger audit state` shows: one run, venv or machine's pool of a [`Snapshot`], with
//! the point it was taken at.

use crate::{AsOf, PoolView, RunView, Snapshot, VenvView};
use runledger_types::{MachineId, RunId, VenvId};
use serde::Serialize;
use std::fmt;

/// The thing to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A run: phase and status, test case, user, selector, venv, machine, attempt, executor.
    Run(RunId),
    /// A venv: machine, name, status, and the run leasing it.
    Venv(VenvId),
    /// A machine's pool: the machine, every venv on it, and the queued runs that could use it.
    Pool(MachineId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run(run_id) => write!(f, "run {run_id}"),
            Self::Venv(venv_id) => write!(f, "venv {venv_id}"),
            Self::Pool(machine_id) => write!(f, "machine {machine_id}"),
        }
    }
}

/// The report: `{"as_of": {...}, "run": {...}}` (or `"venv"`, `"pool"`).
#[derive(Debug, Serialize)]
pub struct StateReport<'a> {
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

impl<'a> StateReport<'a> {
    /// The report of `subject` in `snapshot`, or `None` when it did not exist at that point.
    pub fn new(snapshot: &'a Snapshot, subject: Subject) -> Option<Self> {
        let lab = &snapshot.lab;
        let shown = match subject {
            Subject::Run(run_id) => Shown::Run(RunView::new(run_id, lab.run(&run_id)?)),
            Subject::Venv(venv_id) => Shown::Venv(VenvView::new(venv_id, lab.venv(&venv_id)?)),
            Subject::Pool(machine_id) => Shown::Pool(PoolView::new(lab, machine_id)?),
        };
        Some(Self {
            as_of: snapshot.as_of,
            shown,
        })
    }

    /// The point the report was taken at.
    pub fn as_of(&self) -> AsOf {
        self.as_of
    }
}
