//! The lease watch: every executor holding runs must keep sending heartbeats. On a timer the
//! intake loop hands the watch what each executor holds ([`holdings`]); an executor whose
//! heartbeat count has not moved for a whole lease gets an `expire_executor_lease` command,
//! published like any other command so it is decided, recorded and answered the usual way.
//!
//! The clock lives here, not in the domain: the command names the heartbeat count it saw, and
//! the decision refuses it (`lease_renewed`) if a heartbeat arrived meanwhile. Its command id
//! is derived from the executor and that count, so several handlers watching the same log send
//! one command between them. After a handler restart every lease starts afresh.

use async_nats::HeaderMap;
use runledger_bus::{BusNames, MSG_ID_HEADER, Origin, command_body};
use runledger_domain::Lab;
use runledger_domain::leases::holdings;
use runledger_types::CommandId;
use runledger_types::command::{CommandPayload, ExpireExecutorLease};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The actor the handler's lease watch sends its commands as.
pub const LEASE_WATCH_ACTOR: &str = "system:lease-watch";

/// How often the intake loop asks the watch, as a share of the lease.
pub(crate) fn tick_every(lease: Duration) -> Duration {
    (lease / 6).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// When each executor's heartbeat count last moved, as this process saw it.
#[derive(Debug)]
pub(crate) struct LeaseWatch {
    lease: Duration,
    seen: HashMap<String, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    heartbeats: i64,
    since: Instant,
    /// When an expiry was last sent for this count (sent again after another lease).
    sent: Option<Instant>,
}

/// An executor whose lease has run out: who, and the heartbeat count the expiry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expired {
    pub executor: String,
    pub heartbeats: i64,
}

impl LeaseWatch {
    /// A watch with leases of `lease`.
    pub(crate) fn new(lease: Duration) -> Self {
        Self {
            lease,
            seen: HashMap::new(),
        }
    }

    /// The executors of `lab` whose lease ran out by `now`.
    pub(crate) fn check(&mut self, lab: &Lab, now: Instant) -> Vec<Expired> {
        let held = holdings(lab);
        self.seen.retain(|executor, _| held.contains_key(executor));
        let mut expired = Vec::new();
        for (executor, holding) in held {
            let seen = self.seen.entry(executor.clone()).or_insert(Seen {
                heartbeats: holding.heartbeats,
                since: now,
                sent: None,
            });
            if seen.heartbeats != holding.heartbeats {
                *seen = Seen {
                    heartbeats: holding.heartbeats,
                    since: now,
                    sent: None,
                };
                continue;
            }
            let silent = now.saturating_duration_since(seen.since) >= self.lease;
            let due = seen
                .sent
                .is_none_or(|sent| now.saturating_duration_since(sent) >= self.lease);
            if silent && due {
                seen.sent = Some(now);
                expired.push(Expired {
                    executor,
                    heartbeats: holding.heartbeats,
                });
            }
        }
        expired
    }
}

impl Expired {
    /// The command id: the same for every handler that judges this lease expired.
    pub(crate) fn command_id(&self) -> CommandId {
        let key = format!(
            "expire_executor_lease/{}/{}",
            self.executor, self.heartbeats
        );
        CommandId(Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()))
    }
}

/// Why an expiry was not published.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishExpiryError {
    /// The command could not be encoded.
    #[error(transparent)]
    Encode(#[from] runledger_bus::SendError),
    /// NATS refused the publish.
    #[error(transparent)]
    Publish(#[from] async_nats::PublishError),
}

/// Publishes the expiry as a command to this handler's own commands stream.
pub(crate) async fn publish(
    nats: &async_nats::Client,
    names: &BusNames,
    expired: &Expired,
) -> Result<(), PublishExpiryError> {
    let command_id = expired.command_id();
    let command = ExpireExecutorLease {
        executor: expired.executor.clone(),
        heartbeats: expired.heartbeats,
    };
    let body = command_body(command_id, &Origin::actor(LEASE_WATCH_ACTOR), &command)?;
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, command_id.to_string().as_str());
    tracing::warn!(executor = %expired.executor, heartbeats = expired.heartbeats, %command_id, "executor lease expired");
    nats.publish_with_headers(
        names.command_subject(ExpireExecutorLease::TYPE.as_str()),
        headers,
        body,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runledger_domain::{Actor, Command, decide, evolve};
    use runledger_types::command::ExecutorHeartbeat;
    use runledger_types::event::{RunAssigned, RunRequested, RunStarted};
    use runledger_types::{Event, RunId, TestCaseId};

    fn holding_lab(heartbeats: usize) -> Lab {
        let mut lab = Lab::new();
        let run_id = RunId(Uuid::from_u128(1));
        let events = [
            Event::RunRequested(RunRequested {
                run_id,
                test_case_id: TestCaseId(Uuid::from_u128(2)),
                user: Actor::parse("ci").unwrap_or_else(|_| unreachable!()),
                machine_id: None,
                labels: Default::default(),
                venv_id: None,
                env: Default::default(),
            }),
            Event::RunAssigned(RunAssigned {
                run_id,
                venv_id: Some(runledger_types::VenvId(Uuid::from_u128(3))),
                machine_id: Some(runledger_types::MachineId(Uuid::from_u128(4))),
                attempt: 1,
            }),
            Event::RunStarted(RunStarted {
                run_id,
                executor: "e1".into(),
            }),
        ];
        for event in &events {
            evolve(&mut lab, event);
        }
        beat(&mut lab, heartbeats);
        lab
    }

    fn beat(lab: &mut Lab, times: usize) {
        let actor = Actor::parse("executor:e1").unwrap_or_else(|_| unreachable!());
        let command = Command::ExecutorHeartbeat(ExecutorHeartbeat { run_ids: vec![] });
        for _ in 0..times {
            for event in decide(lab, &actor, &command).unwrap_or_default() {
                evolve(lab, &event);
            }
        }
    }

    #[test]
    fn silent_for_a_lease_expires_once_per_lease() {
        let lease = Duration::from_secs(30);
        let mut watch = LeaseWatch::new(lease);
        let lab = holding_lab(2);
        let t0 = Instant::now();
        assert!(watch.check(&lab, t0).is_empty());
        assert!(watch.check(&lab, t0 + lease / 2).is_empty());
        let expired = watch.check(&lab, t0 + lease);
        assert_eq!(
            expired,
            vec![Expired {
                executor: "e1".into(),
                heartbeats: 2
            }]
        );
        assert!(watch.check(&lab, t0 + lease + lease / 2).is_empty());
        assert_eq!(watch.check(&lab, t0 + lease * 2).len(), 1, "sent again");
    }

    #[test]
    fn a_heartbeat_restarts_the_lease() {
        let lease = Duration::from_secs(30);
        let mut watch = LeaseWatch::new(lease);
        let mut lab = holding_lab(1);
        let t0 = Instant::now();
        assert!(watch.check(&lab, t0).is_empty());
        beat(&mut lab, 1);
        assert!(watch.check(&lab, t0 + lease).is_empty());
        assert!(watch.check(&lab, t0 + lease + lease / 2).is_empty());
        assert_eq!(watch.check(&lab, t0 + lease * 2).len(), 1);
    }

    #[test]
    fn the_command_id_names_executor_and_count() {
        let a = Expired {
            executor: "e1".into(),
            heartbeats: 2,
        };
        let b = Expired {
            executor: "e1".into(),
            heartbeats: 3,
        };
        assert_eq!(a.command_id(), a.clone().command_id());
        assert_ne!(a.command_id(), b.command_id());
    }
}
