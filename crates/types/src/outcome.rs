//! The answer to every command, published on `<prefix>.outcomes.<command_id>`.

use crate::ids::{CommandId, StreamId};
use crate::rejection::Rejection;
use serde::{Deserialize, Serialize};

/// Where one appended event landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    /// `run-…`, `venv-…`, …
    pub stream_id: StreamId,
    /// The event's version within its stream.
    pub version: i64,
    /// The event's global position in the log.
    pub position: i64,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
}

/// Accepted with the events it appended, or rejected with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The command answered.
    pub command_id: CommandId,
    /// True when the command's events were appended.
    pub accepted: bool,
    /// The appended events (accepted only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventRef>,
    /// Why it was refused (rejected only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Rejection>,
}

impl Outcome {
    /// An accepted command's outcome.
    pub fn accepted(command_id: CommandId, events: Vec<EventRef>) -> Self {
        Self {
            command_id,
            accepted: true,
            events,
            error: None,
        }
    }

    /// A rejected command's outcome.
    pub fn rejected(command_id: CommandId, error: Rejection) -> Self {
        Self {
            command_id,
            accepted: false,
            events: Vec::new(),
            error: Some(error),
        }
    }

    /// The highest position among the events, for read-your-writes waits.
    pub fn last_position(&self) -> Option<i64> {
        self.events.iter().map(|event| event.position).max()
    }
}
