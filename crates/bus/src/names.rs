//! Names of subjects, streams and consumers, derived from one prefix.

use runledger_types::CommandId;

/// Why a prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NATS prefix must be 1-64 letters, digits, '_' or '-', got {0:?}")]
pub struct InvalidPrefix(pub String);

/// Every NATS name runledger uses. The default prefix `runledger` gives the contract's names:
/// subjects `runledger.commands.<type>`, streams `RUNLEDGER_COMMANDS` and `RUNLEDGER_EVENTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusNames {
    prefix: String,
    stream_prefix: String,
}

impl Default for BusNames {
    fn default() -> Self {
        Self {
            prefix: "runledger".into(),
            stream_prefix: "RUNLEDGER".into(),
        }
    }
}

impl BusNames {
    /// Names under `prefix` (subjects `<prefix>.…`, streams `<PREFIX>_…`).
    pub fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(InvalidPrefix(prefix.to_owned()));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            stream_prefix: prefix.to_ascii_uppercase().replace('-', "_"),
        })
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `RUNLEDGER_COMMANDS`: captures every command, so none is lost while no handler runs.
    pub fn commands_stream(&self) -> String {
        format!("{}_COMMANDS", self.stream_prefix)
    }

    /// `RUNLEDGER_EVENTS`: committed events in log order; stream sequence = log position.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_prefix)
    }

    /// `RUNLEDGER_EXECUTORS`: the key-value bucket of executors' liveness (stream
    /// `KV_RUNLEDGER_EXECUTORS`), kept out of the event log.
    pub fn liveness_bucket(&self) -> String {
        format!("{}_EXECUTORS", self.stream_prefix)
    }

    /// `runledger.commands.<type>`
    pub fn command_subject(&self, command_type: &str) -> String {
        format!("{}.commands.{command_type}", self.prefix)
    }

    /// `runledger.commands.>`
    pub fn commands_filter(&self) -> String {
        format!("{}.commands.>", self.prefix)
    }

    /// `runledger.events.<stream type>.<event type>`
    pub fn event_subject(&self, stream_type: &str, event_type: &str) -> String {
        format!("{}.events.{stream_type}.{event_type}", self.prefix)
    }

    /// `runledger.events.>`
    pub fn events_filter(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// `runledger.outcomes.<command_id>`: core NATS; subscribe before publishing the command.
    pub fn outcome_subject(&self, command_id: CommandId) -> String {
        format!("{}.outcomes.{command_id}", self.prefix)
    }

    /// The handler's durable pull consumer on the commands stream.
    pub fn handler_consumer(&self) -> &'static str {
        "handler"
    }

    /// The command type named by a command subject's last token.
    pub fn command_type_of<'a>(&self, subject: &'a str) -> &'a str {
        subject.rsplit('.').next().unwrap_or(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_the_contract() {
        let names = BusNames::default();
        assert_eq!(names.commands_stream(), "RUNLEDGER_COMMANDS");
        assert_eq!(names.events_stream(), "RUNLEDGER_EVENTS");
        assert_eq!(
            names.command_subject("start_run"),
            "runledger.commands.start_run"
        );
        assert_eq!(
            names.event_subject("run", "run_finished"),
            "runledger.events.run.run_finished"
        );
        assert_eq!(
            names.command_type_of("runledger.commands.cancel_run"),
            "cancel_run"
        );
    }

    #[test]
    fn prefixes_are_checked() {
        let names = BusNames::new("t-1a_b").expect("valid");
        assert_eq!(names.events_stream(), "T_1A_B_EVENTS");
        assert!(BusNames::new("a.b").is_err());
        assert!(BusNames::new("").is_err());
        assert!(BusNames::new("a b").is_err());
    }
}
