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

/// How long a command delivered to a handler may stay unacked before JetStream delivers it again
/// (to another handler, after a crash): the handlers' default. Until then a command held by a
/// handler that died is stuck, and publishing it again changes nothing (within the commands
/// stream's duplicate window the same `Nats-Msg-Id` is not stored twice), so whoever waits for
/// its outcome must wait longer than this.
pub const COMMAND_ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
