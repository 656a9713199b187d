//! The executor component: runs tests on the lab's machines and reports back with
//! executor commands; it never writes the event log.
//!
//! Its parts, each testable on its own: [`ssh`] (russh connections with password or key auth,
//! pinned or trust-on-first-use host keys, streamed exec, SFTP upload, a per-machine pool),
//! [`render`] (the exact POSIX-shell and PowerShell commands for provisioning, running with a
//! process-group marker, killing and cleaning up), [`chunker`] (output batched into ordered
//! `report_run_output` chunks), [`junit`] (JUnit XML into the run's summary and per-test results)
//! and [`classify`] (how a run ended: `passed`, `failed`, `error` with a reason code, `timed_out`,
//! `cancelled`); [`view`] (what an executor knows, folded from the events stream, credentials
//! sealed until a connection needs them) and [`feed`] (the ordered events follower and the
//! shared durable work queues for `run_assigned` and `venv_added`); [`driver`] (one run or one
//! venv provisioning driven over a transport, reporting through a [`driver::Reporter`]).
//! [`service`] wires them together: it takes work from JetStream, claims runs, drives them and
//! reports back over NATS through its [`service::NatsReporter`].
#![deny(missing_docs)]

pub mod chunker;
pub mod classify;
pub mod driver;
pub mod feed;
pub mod jenkins;
pub mod junit;
pub mod local;
pub mod render;
pub mod service;
pub mod ssh;
pub mod view;

pub use service::{ExecutorError, ExecutorSettings, run};
