//! NATS for runledger: subject and stream names (with a prefix, so tests and several labs can
//! share one server), JetStream stream and consumer set-up, and the command/outcome codec.
//!
//! Only this crate (and services at the edge) know async-nats. Depends on runledger-types.
#![deny(missing_docs)]

mod auth;
mod commands;
mod names;
mod run_feed;
mod setup;

pub use auth::{CredentialError, NatsAuth};
pub use commands::{CommandSender, SendError};
pub use names::{BusNames, InvalidPrefix};
pub use run_feed::{FedEvent, RunFeed};
pub use setup::{BusError, connect, connect_with, ensure_streams, handler_consumer, jetstream};

/// The `Nats-Msg-Id` header name.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
