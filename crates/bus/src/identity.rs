//! Which log a stream and an event belong to.
//!
//! A log's identity ([`LogId`]) is made once, with its schema. The relay writes it into the
//! description of the streams it publishes to ([`StreamClaim`]) and into a header of every
//! event ([`LOG_HEADER`]). A reader that knows the stream's claim keeps only the events that
//! carry it ([`StreamClaim::admits`]): a stream shared by mistake, or left over from a dropped
//! database, never makes a component act on another log's events.

use runledger_types::LogId;
use std::fmt;

/// The header naming the log an event belongs to: `Runledger-Log: <log id>`.
pub const LOG_HEADER: &str = "Runledger-Log";

/// The start of a claimed stream's description.
const MARK: &str = "runledger log ";
/// Before this, in an adopted stream's description: the first sequence carrying the header.
const FROM: &str = "from sequence ";

/// A stream's claim: the log it belongs to, kept in the stream's description (NATS 2.9 has no
/// stream metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamClaim {
    /// The log whose events the stream holds.
    pub log: LogId,
    /// The first sequence whose events carry [`LOG_HEADER`]: 1, unless the stream held this
    /// log's events before it was claimed (published by a runledger without identities).
    pub headers_from: u64,
}

/// Why an event is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignEvent {
    /// It names another log (or something that is no log id).
    OtherLog(String),
    /// It names no log, at a sequence where every event of the stream's log names it.
    Unmarked,
}

impl fmt::Display for ForeignEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherLog(log) => write!(f, "it belongs to log {log}"),
            Self::Unmarked => write!(f, "it carries no {LOG_HEADER} header"),
        }
    }
}

impl StreamClaim {
    /// The claim of a stream created for `log`: every event carries the header.
    pub fn new(log: LogId) -> Self {
        Self {
            log,
            headers_from: 1,
        }
    }

    /// The stream description that records this claim.
    pub fn describe(&self) -> String {
        if self.headers_from <= 1 {
            format!("{MARK}{}", self.log)
        } else {
            format!(
                "{MARK}{} ({LOG_HEADER} header {FROM}{})",
                self.log, self.headers_from
            )
        }
    }

    /// The claim a description records, if it records one.
    pub fn parse(description: &str) -> Option<Self> {
        let rest = description.trim().strip_prefix(MARK)?;
        let id = rest.split_whitespace().next()?;
        let log = id.parse().ok()?;
        let headers_from = match rest.split_once(FROM) {
            Some((_, tail)) => tail
                .trim_end_matches(')')
                .trim()
                .parse()
                .ok()
                .filter(|from| *from >= 1)?,
            None => 1,
        };
        Some(Self { log, headers_from })
    }

    /// Whether the event at `sequence`, whose [`LOG_HEADER`] is `header`, belongs to this
    /// claim's log.
    pub fn admits(&self, header: Option<&str>, sequence: u64) -> Result<(), ForeignEvent> {
        match header {
            Some(named) if named.parse::<LogId>().ok() == Some(self.log) => Ok(()),
            Some(named) => Err(ForeignEvent::OtherLog(named.to_owned())),
            None if sequence < self.headers_from => Ok(()),
            None => Err(ForeignEvent::Unmarked),
        }
    }

    /// [`admits`](Self::admits) for a message as async-nats hands it over.
    pub fn admits_message(
        &self,
        headers: Option<&async_nats::HeaderMap>,
        sequence: u64,
    ) -> Result<(), ForeignEvent> {
        let header = headers
            .and_then(|headers| headers.get(LOG_HEADER))
            .map(|value| value.as_str());
        self.admits(header, sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_round_trips() {
        let fresh = StreamClaim::new(LogId::new());
        assert_eq!(StreamClaim::parse(&fresh.describe()), Some(fresh));
        assert!(fresh.describe().starts_with("runledger log "));
        let adopted = StreamClaim {
            headers_from: 58,
            ..fresh
        };
        assert_eq!(StreamClaim::parse(&adopted.describe()), Some(adopted));
        assert_eq!(StreamClaim::parse(""), None);
        assert_eq!(StreamClaim::parse("events of the lab"), None);
        assert_eq!(StreamClaim::parse("runledger log not-a-uuid"), None);
    }

    #[test]
    fn only_the_claimed_log_is_admitted() {
        let ours = LogId::new();
        let theirs = LogId::new().to_string();
        let claim = StreamClaim {
            log: ours,
            headers_from: 5,
        };
        assert_eq!(claim.admits(Some(&ours.to_string()), 9), Ok(()));
        assert_eq!(
            claim.admits(Some(&theirs), 9),
            Err(ForeignEvent::OtherLog(theirs.clone()))
        );
        assert_eq!(
            claim.admits(Some(&theirs), 1),
            Err(ForeignEvent::OtherLog(theirs))
        );
        // Unmarked events are this log's only before the claim was made.
        assert_eq!(claim.admits(None, 4), Ok(()));
        assert_eq!(claim.admits(None, 5), Err(ForeignEvent::Unmarked));
        assert_eq!(
            StreamClaim::new(ours).admits(None, 1),
            Err(ForeignEvent::Unmarked)
        );
    }
}
