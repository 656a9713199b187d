//! The quarantine watch: a quarantine with an end lapses by itself. On a timer the intake loop
//! hands the watch every quarantine that has an end ([`ends`]); once an end has passed by this
//! process's clock (and a second more, for handlers whose clocks differ a little) the watch
//! sends `lapse_quarantine` and waits for its outcome. The decision takes the handler's own
//! time and accepts only an end that has passed, so the log records `test_released` with
//! `lapsed: true`; whether a failure is excused never waits for it (a quarantine whose end has
//! passed no longer holds at any decision).
//!
//! The command's id is derived from the test, its end and an attempt number, so several handlers
//! watching the same lab send one command between them. A lapse refused as too early
//! (`quarantine_not_lapsed`: the deciding handler's clock was behind) is sent again, as the next
//! attempt, after [`RETRY_AFTER`]; any other answer ends the watch's work on that end.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use runledger_bus::{CommandSender, SendError};
use runledger_domain::Lab;
use runledger_domain::quarantine::ends;
use runledger_types::command::LapseQuarantine;
use runledger_types::{CommandId, Outcome, RejectionCode, TestId};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The actor the handler's quarantine watch sends its commands as.
pub const QUARANTINE_WATCH_ACTOR: &str = "system:quarantine-watch";

/// How long after an end the watch sends its lapse: room for handlers' clocks to differ.
const GRACE: TimeDelta = TimeDelta::seconds(1);

/// How long after a lapse refused as too early (or unanswered) the watch tries again.
pub(crate) const RETRY_AFTER: TimeDelta = TimeDelta::seconds(30);

/// How often the watch looks.
const TICK: Duration = Duration::from_secs(1);

/// Every quarantine with an end, as the intake loop last folded them.
pub(crate) type Ends = BTreeMap<TestId, DateTime<Utc>>;

/// The ends of `lab`'s quarantines, for [`watch_quarantines`].
pub(crate) fn quarantine_ends(lab: &Lab) -> Ends {
    ends(lab)
}

/// A lapse to send: which test, the end it passed, and the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lapse {
    pub test_id: TestId,
    pub until: DateTime<Utc>,
    pub attempt: u32,
}

impl Lapse {
    /// The command id: the same for every handler that sends this attempt.
    pub(crate) fn command_id(&self) -> CommandId {
        let until = self.until.to_rfc3339_opts(SecondsFormat::Micros, true);
        let key = format!("lapse_quarantine/{}/{until}/{}", self.test_id, self.attempt);
        CommandId(Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()))
    }
}

/// What came of a lapse the watch sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Recorded (accepted, or refused for a reason another attempt would not change).
    Settled,
    /// Refused as too early: the deciding handler's clock was behind this one's.
    TooEarly,
    /// No outcome came: send the same attempt again later.
    Unanswered,
}

impl Answer {
    /// How a send's result counts.
    pub(crate) fn of(result: &Result<Outcome, SendError>) -> Self {
        match result {
            Ok(outcome) => match outcome.error.as_ref().map(|rejection| rejection.code) {
                Some(RejectionCode::QuarantineNotLapsed) => Self::TooEarly,
                Some(RejectionCode::StorageError) => Self::Unanswered,
                _ => Self::Settled,
            },
            Err(_) => Self::Unanswered,
        }
    }
}

/// Where the watch is with one quarantine's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tracked {
    until: DateTime<Utc>,
    attempt: u32,
    /// Not before this time again; `None` once settled.
    next: Option<DateTime<Utc>>,
}

/// The lapses this process has sent, by test.
#[derive(Debug, Default)]
pub(crate) struct QuarantineWatch {
    tracked: HashMap<TestId, Tracked>,
}

impl QuarantineWatch {
    /// The lapses due at `now` among `ends`.
    pub(crate) fn due(&mut self, ends: &Ends, now: DateTime<Utc>) -> Vec<Lapse> {
        self.tracked.retain(|test_id, _| ends.contains_key(test_id));
        let mut due = Vec::new();
        for (test_id, until) in ends {
            if *until + GRACE > now {
                continue;
            }
            let tracked = self.tracked.entry(*test_id).or_insert(Tracked {
                until: *until,
                attempt: 0,
                next: Some(now),
            });
            if tracked.until != *until {
                *tracked = Tracked {
                    until: *until,
                    attempt: 0,
                    next: Some(now),
                };
            }
            if tracked.next.is_some_and(|next| next <= now) {
                due.push(Lapse {
                    test_id: *test_id,
                    until: *until,
                    attempt: tracked.attempt,
                });
            }
        }
        due
    }

    /// Records what came of `lapse` at `now`.
    pub(crate) fn answered(&mut self, lapse: &Lapse, answer: Answer, now: DateTime<Utc>) {
        let Some(tracked) = self.tracked.get_mut(&lapse.test_id) else {
            return;
        };
        if tracked.until != lapse.until || tracked.attempt != lapse.attempt {
            return;
        }
        match answer {
            Answer::Settled => tracked.next = None,
            Answer::TooEarly => {
                tracked.attempt += 1;
                tracked.next = Some(now + RETRY_AFTER);
            }
            Answer::Unanswered => tracked.next = Some(now + RETRY_AFTER),
        }
    }
}

/// Watches the quarantines `ends` names until `shutdown`, sending a lapse for each end that has
/// passed and waiting for its outcome.
pub(crate) async fn watch_quarantines(
    sender: CommandSender,
    ends: watch::Receiver<Ends>,
    shutdown: CancellationToken,
) {
    let mut quarantines = QuarantineWatch::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let current = ends.borrow().clone();
        for lapse in quarantines.due(&current, Utc::now()) {
            let command = LapseQuarantine {
                test_id: lapse.test_id,
            };
            let command_id = lapse.command_id();
            let sent = tokio::select! {
                () = shutdown.cancelled() => return,
                sent = sender.send(command_id, QUARANTINE_WATCH_ACTOR, &command) => sent,
            };
            let answer = Answer::of(&sent);
            match &sent {
                Ok(outcome) => {
                    tracing::info!(test_id = %lapse.test_id, %command_id, accepted = outcome.accepted, ?answer, "quarantine lapse sent")
                }
                Err(err) => {
                    tracing::warn!(test_id = %lapse.test_id, %command_id, error = %err, "quarantine lapse unanswered; trying again later")
                }
            }
            quarantines.answered(&lapse, answer, Utc::now());
        }
    }
}

#[cfg(test)]
mod tests;
