//! The command handler: the only writer of the event log.
//!
//! It takes commands from the JetStream stream `RUNLEDGER_COMMANDS` (durable pull consumer),
//! decides them with the pure domain against the lab's state, appends the events of a whole group
//! of commands in one transaction (group commit), answers each command on
//! `<prefix>.outcomes.<command_id>` and only then acks its message. The outbox relay (one leader
//! among all handler processes) publishes committed events to `RUNLEDGER_EVENTS` in log order,
//! and the sealer extends the log's hash chain (tamper evidence) shortly after each commit. The
//! lease watch ends the runs of executors that stopped sending heartbeats; the quarantine watch
//! records the lapse of quarantines whose end has passed.
//!
//! Depends on the domain, the store, the bus and the secrets crates.
#![deny(missing_docs)]

mod claim;
mod decide;
mod feed;
mod gather;
mod group;
mod inbound;
mod intake;
mod lab_sync;
pub mod lease_watch;
mod pipeline;
pub mod quarantine_watch;
mod relay;
mod seal;
mod stats;

pub use claim::{ClaimError, claim_streams};
pub use intake::{Handler, HandlerError, HandlerSettings, run};
pub use relay::RelayError;
pub use seal::run_sealer;
pub use stats::HandlerStats;
