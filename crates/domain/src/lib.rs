//! The pure decision logic of runledger: given the lab's state folded from the event log,
//! [`decide`] turns a command into the events to append (or a [`Rejection`]), and [`evolve`]
//! folds one event into the state.
//!
//! This crate does no I/O: no async runtime, no database, no message bus, no clock. It depends
//! only on `runledger-types` (the shared vocabulary), `runledger-insights` (a test's identity),
//! `chrono` (times as values: the decision's time is an argument of [`decide`]) and `imbl`
//! (persistent maps, so a [`Lab`] clones in O(1)). The command handler owns the loop: load,
//! `decide`, append, `evolve`.
//!
//! Rules the decisions enforce:
//! - **Authorization.** An actor that names a registered user follows that user's role; any other
//!   actor is a trusted system that may do everything except send executor reports, which only
//!   `executor:<name>` actors may send. Members register machines and manage the machines (and
//!   the venvs of the machines) they own; admins manage everything.
//! - **Scheduling.** A run leases only a free venv; queued runs are served first in, first out
//!   whenever a venv becomes usable (see [`scheduling`]).
//! - **Quarantine.** A `failed` report whose every failing result is of a test quarantined at
//!   the decision's time is recorded as `passed`, its summary counting them
//!   (`quarantined_failed`); see [`quarantine`].
#![deny(missing_docs)]

mod authz;
mod decide;
mod evolve;
pub mod groups;
pub mod leases;
pub mod quarantine;
pub mod scheduling;
mod state;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use decide::{MAX_QUEUED_RUNS_PER_ACTOR, decide};
pub use evolve::{evolve, evolve_compact};
pub use state::{
    FinishedRun, GroupState, JenkinsProgress, Lab, MachineState, Quarantine, ReportedTest,
    RunPhase, RunSelector, RunState, ShardSplit, TestCaseState, UserState, VenvState, VenvStatus,
};

#[doc(no_inline)]
pub use runledger_types::{Actor, Command, Event, Rejection, RejectionCode, StreamId};
