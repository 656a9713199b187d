//! The shared vocabulary of runledger: identifiers, validated values, commands, events, envelopes
//! and outcomes, exactly as the wire contract (`shared/spec/contract.md`) names them.
//!
//! This crate does no I/O. It depends on serde, uuid, chrono and utoipa (for the payloads' OpenAPI schemas) only, so every other crate (the
//! pure domain, the store, the bus, the services) can share it.
#![deny(missing_docs)]

pub mod command;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod jenkins;
pub mod outcome;
pub mod parse;
pub mod pytest;
pub mod rejection;
mod schema;
pub mod secret;
pub mod values;

pub use command::{Command, Incoming};
pub use envelope::{
    CommandEnvelope, CommandMeta, EventRecord, NewEvent, ParsedCommand, RawEventRecord,
    RefusedInput,
};
pub use event::Event;
pub use ids::{
    CommandId, EventId, GroupId, LogId, MachineId, RunId, StreamId, StreamType, TestCaseId, TestId,
    VenvId,
};
pub use outcome::{EventRef, Outcome};
pub use parse::{MessageOrigin, parse_command};
pub use rejection::{Rejection, RejectionCode};
pub use secret::{OutgoingSecret, PasswordHash, SealedSecret, SecretString};
pub use values::{
    Actor, EnvName, GroupStatus, Host, HostKeyFingerprint, Label, Line, MachineName, Os, Port,
    PythonVersion, Reason, RelativePath, RemotePath, RemoteUser, Role, RunStatus, TestSummary,
    Text, Username, VenvName,
};
