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
    /// Identifies a run group: one suite split into shards, or a matrix of runs, with one answer.
    GroupId
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
uuid_id!(
    /// Identifies one event log: made once, when the log's schema is created. The NATS streams
    /// a log publishes to carry it (in their description), and so does every event the relay
    /// publishes (header `Runledger-Log`), so no component acts on another log's events.
    LogId
);

/// Identifies one test across runs: the UUID v5 of its test case, classname and name that
/// `runledger_insights::TestKey::id` computes (any client can compute it too). Not made at
/// random, so it has no `new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TestId(pub Uuid);

impl fmt::Display for TestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Uuid> for TestId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl std::str::FromStr for LogId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text).map(Self)
    }
}

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
    /// `test-<uuid>`: one test's quarantine (the uuid is its [`TestId`]).
    Test,
    /// `group-<uuid>`: a run group: its split, cancellation and verdict.
    Group,
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
            Self::Test => "test",
            Self::Group => "group",
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

    /// `run-<uuid>`: a run's stream.
    pub fn run(run_id: RunId) -> Self {
        Self::new(StreamType::Run, run_id)
    }

    /// `group-<uuid>`: a run group's stream.
    pub fn group(group_id: GroupId) -> Self {
        Self::new(StreamType::Group, group_id)
    }

    /// `user-<username>`: a user's stream.
    pub fn user(username: &str) -> Self {
        Self::new(StreamType::User, username)
    }

    /// `machine-<uuid>`: a machine's stream.
    pub fn machine(machine_id: MachineId) -> Self {
        Self::new(StreamType::Machine, machine_id)
    }

    /// `venv-<uuid>`: a venv's stream.
    pub fn venv(venv_id: VenvId) -> Self {
        Self::new(StreamType::Venv, venv_id)
    }

    /// `test_case-<uuid>`: a test case's stream.
    pub fn test_case(test_case_id: TestCaseId) -> Self {
        Self::new(StreamType::TestCase, test_case_id)
    }

    /// `command-<uuid>`: the rejection of one command.
    pub fn command(command_id: CommandId) -> Self {
        Self::new(StreamType::Command, command_id)
    }

    /// `test-<uuid>`: one test's quarantine.
    pub fn test(test_id: TestId) -> Self {
        Self::new(StreamType::Test, test_id)
    }

    /// `executor-<name>`: one executor process's stream.
    pub fn executor(name: &str) -> Self {
        Self::new(StreamType::Executor, name)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key the stream is named after: the part after the first `-` (a run id, a username).
    pub fn key(&self) -> Option<&str> {
        self.0.split_once('-').map(|(_, key)| key)
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

/// A stream id reads as the text it is (`starts_with("run-")`, `len()`), but is built only by
/// [`StreamId::new`] and its shorthands, or from what the log stored.
impl std::ops::Deref for StreamId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for StreamId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StreamId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for StreamId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
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
        assert_eq!(StreamId::run(id), stream);
        assert_eq!(StreamId::user("ada"), "user-ada");
        assert_eq!(
            StreamId::test(TestId(Uuid::nil())).as_str(),
            "test-00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            StreamId::new(StreamType::TestCase, "x").stream_type(),
            "test_case"
        );
    }
}
