//! Typed identifiers and stream ids.
//!
//! Every entity has its own uuid newtype so a `RunId` can never be passed where a `VenvId` is
//! meant. Stream ids follow the contract: `<stream type>-<id>`.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

uuid_id!(
    /// Identifies one command; the idempotency key.
    CommandId
);
uuid_id!(
    /// Identifies one event in the log.
    EventId
);
uuid_id!(
    /// Identifies a run of a test case.
    RunId
);
uuid_id!(
    /// Identifies a registered machine.
    MachineId
);
uuid_id!(
    /// Identifies a Python virtualenv on a machine.
    VenvId
);
uuid_id!(
    /// Identifies a defined test case.
    TestCaseId
);

/// The kinds of event streams; the first token of a stream id and the fourth of an event subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    /// `user-<username>`
    User,
    /// `machine-<uuid>`
    Machine,
    /// `venv-<uuid>`
    Venv,
    /// `test_case-<uuid>`
    TestCase,
    /// `run-<uuid>`
    Run,
    /// `executor-<name>`: heartbeats of one executor process.
    Executor,
    /// `command-<uuid>`: the rejection of one command.
    Command,
}

impl StreamType {
    /// The wire name, as used in stream ids and subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Machine => "machine",
            Self::Venv => "venv",
            Self::TestCase => "test_case",
            Self::Run => "run",
            Self::Executor => "executor",
            Self::Command => "command",
        }
    }
}

/// A stream id such as `run-0193…`: the unit of optimistic concurrency in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// Builds `<stream type>-<key>`.
    pub fn new(kind: StreamType, key: impl fmt::Display) -> Self {
        Self(format!("{}-{}", kind.as_str(), key))
    }

    /// Wraps a stream id read back from the log.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stream type: the part before the first `-`.
    pub fn stream_type(&self) -> &str {
        self.0
            .split_once('-')
            .map_or(self.0.as_str(), |(kind, _)| kind)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_follow_the_contract() {
        let id = RunId(Uuid::nil());
        let stream = StreamId::new(StreamType::Run, id);
        assert_eq!(stream.as_str(), "run-00000000-0000-0000-0000-000000000000");
        assert_eq!(stream.stream_type(), "run");
        assert_eq!(
            StreamId::new(StreamType::TestCase, "x").stream_type(),
            "test_case"
        );
    }
}
