//! NATS for runledger: subject and stream names (with a prefix, so tests and several labs can
//! share one server), JetStream stream and consumer set-up, and the command/outcome codec.
//!
//! Only this crate (and services at the edge) know async-nats. Depends on runledger-types.
#![deny(missing_docs)]

mod auth;
pub mod claim;
mod commands;
mod identity;
mod liveness;
mod names;
pub mod reset;
mod run_feed;
mod setup;
mod watch;
mod wedges;

pub use auth::{CredentialError, NatsAuth};
pub use claim::{Decision, LogFacts, Refusal, StreamKind, StreamState};
pub use commands::{CommandSender, Origin, Pending, SendError, command_body};
pub use identity::{ForeignEvent, LOG_HEADER, StreamClaim};
pub use liveness::{Beat, LIVENESS_MAX_AGE, Liveness, LivenessError, key_of};
pub use names::{BusNames, InvalidPrefix};
pub use run_feed::{FedEvent, RunFeed};
pub use setup::{BusError, connect, connect_with, ensure_streams, handler_consumer, jetstream};
pub use watch::{ClaimWatch, LOOK_EVERY, await_claim, watch_claim};
pub use wedges::Wedges;

/// The `Nats-Msg-Id` header name.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
