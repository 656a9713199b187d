//! The lease watch: every executor holding runs must keep beating. Beats are liveness, not
//! history: executors write them to the bus's liveness bucket ([`Liveness`]), never to the log.
//! On a timer the intake loop hands the watch what each executor holds ([`holdings`]); the
//! watch reads the revision of each holder's last beat, and an executor whose revision has not
//! moved for a whole lease gets an `expire_executor_lease` command, published like any other
//! command so it is decided, recorded and answered the usual way. Only that decision reaches
//! the log: an idle lab appends nothing.
//!
//! The revision is read right before the judgement, so a beat that arrived in time always
//! counts. The command's id is derived from the executor and the revision it names, so several
//! handlers watching the same bus send one command between them. After a handler restart every
//! lease starts afresh.

use async_nats::HeaderMap;
use runledger_bus::{BusNames, Liveness, MSG_ID_HEADER, Origin, command_body};
use runledger_domain::Lab;
use runledger_domain::leases::holdings;
use runledger_types::command::{CommandPayload, ExpireExecutorLease};
use runledger_types::{CommandId, RunId};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The actor the handler's lease watch sends its commands as.
pub const LEASE_WATCH_ACTOR: &str = "system:lease-watch";

/// What each executor holds, as the intake loop last folded it.
pub(crate) type Held = BTreeMap<String, Vec<RunId>>;

/// How often the watch looks, as a share of the lease.
pub(crate) fn tick_every(lease: Duration) -> Duration {
    (lease / 6).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// The holdings of `lab`, for [`watch_leases`].
pub(crate) fn held(lab: &Lab) -> Held {
    holdings(lab)
}

/// When each executor's beat revision last moved, as this process saw it.
#[derive(Debug)]
pub(crate) struct LeaseWatch {
    lease: Duration,
    seen: HashMap<String, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    revision: u64,
    since: Instant,
    /// When an expiry was last sent for this revision (sent again after another lease).
    sent: Option<Instant>,
}

/// An executor whose lease has run out: who, and the beat revision the expiry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expired {
    pub executor: String,
    pub revision: u64,
}

impl LeaseWatch {
    /// A watch with leases of `lease`.
    pub(crate) fn new(lease: Duration) -> Self {
        Self {
            lease,
            seen: HashMap::new(),
        }
    }

    /// The executors whose lease ran out by `now`. `beats` names every executor holding runs
    /// with the revision of its last beat (0: none in the bucket), or `None` when it could not
    /// be read: such an executor is not judged this time.
    pub(crate) fn check(
        &mut self,
        beats: &BTreeMap<String, Option<u64>>,
        now: Instant,
    ) -> Vec<Expired> {
        self.seen.retain(|executor, _| beats.contains_key(executor));
        let mut expired = Vec::new();
        for (executor, revision) in beats {
            let Some(revision) = *revision else {
                continue;
            };
            let seen = self.seen.entry(executor.clone()).or_insert(Seen {
                revision,
                since: now,
                sent: None,
            });
            if seen.revision != revision {
                *seen = Seen {
                    revision,
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
                    executor: executor.clone(),
                    revision,
                });
            }
        }
        expired
    }
}

impl Expired {
    /// The command id: the same for every handler that judges this lease expired.
    pub(crate) fn command_id(&self) -> CommandId {
        let key = format!("expire_executor_lease/{}/{}", self.executor, self.revision);
        CommandId(Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()))
    }
}

/// Watches the leases of whoever `held` names until `shutdown`: every tick it reads each
/// holder's beat revision and publishes an expiry for those silent for a whole lease.
pub(crate) async fn watch_leases(
    nats: async_nats::Client,
    names: BusNames,
    liveness: Liveness,
    lease: Duration,
    held: watch::Receiver<Held>,
    shutdown: CancellationToken,
) {
    let mut leases = LeaseWatch::new(lease);
    let mut tick = tokio::time::interval(tick_every(lease));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let holders: Vec<String> = held.borrow().keys().cloned().collect();
        let mut beats = BTreeMap::new();
        for executor in holders {
            let revision = match liveness.revision(&executor).await {
                Ok(revision) => Some(revision),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read an executor's liveness; not judging its lease this time");
                    None
                }
            };
            beats.insert(executor, revision);
        }
        for expired in leases.check(&beats, Instant::now()) {
            if let Err(err) = publish(&nats, &names, &expired).await {
                tracing::warn!(error = %err, executor = %expired.executor, "cannot publish a lease expiry; retrying after the next lease");
            }
        }
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
async fn publish(
    nats: &async_nats::Client,
    names: &BusNames,
    expired: &Expired,
) -> Result<(), PublishExpiryError> {
    let command_id = expired.command_id();
    let command = ExpireExecutorLease {
        executor: expired.executor.clone(),
        heartbeats: i64::try_from(expired.revision).unwrap_or(i64::MAX),
    };
    let body = command_body(command_id, &Origin::actor(LEASE_WATCH_ACTOR), &command)?;
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, command_id.to_string().as_str());
    tracing::warn!(executor = %expired.executor, revision = expired.revision, %command_id, "executor lease expired");
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

    fn beats(revision: Option<u64>) -> BTreeMap<String, Option<u64>> {
        BTreeMap::from([("e1".to_owned(), revision)])
    }

    #[test]
    fn silent_for_a_lease_expires_once_per_lease() {
        let lease = Duration::from_secs(30);
        let mut watch = LeaseWatch::new(lease);
        let t0 = Instant::now();
        assert!(watch.check(&beats(Some(2)), t0).is_empty());
        assert!(watch.check(&beats(Some(2)), t0 + lease / 2).is_empty());
        let expired = watch.check(&beats(Some(2)), t0 + lease);
        assert_eq!(
            expired,
            vec![Expired {
                executor: "e1".into(),
                revision: 2
            }]
        );
        assert!(
            watch
                .check(&beats(Some(2)), t0 + lease + lease / 2)
                .is_empty()
        );
        assert_eq!(
            watch.check(&beats(Some(2)), t0 + lease * 2).len(),
            1,
            "sent again"
        );
    }

    #[test]
    fn a_beat_restarts_the_lease() {
        let lease = Duration::from_secs(30);
        let mut watch = LeaseWatch::new(lease);
        let t0 = Instant::now();
        assert!(watch.check(&beats(Some(1)), t0).is_empty());
        assert!(watch.check(&beats(Some(5)), t0 + lease).is_empty());
        assert!(
            watch
                .check(&beats(Some(5)), t0 + lease + lease / 2)
                .is_empty()
        );
        assert_eq!(watch.check(&beats(Some(5)), t0 + lease * 2).len(), 1);
    }

    #[test]
    fn an_executor_that_never_beat_expires_after_a_lease() {
        let lease = Duration::from_secs(30);
        let mut watch = LeaseWatch::new(lease);
        let t0 = Instant::now();
        assert!(watch.check(&beats(Some(0)), t0).is_empty());
        assert_eq!(watch.check(&beats(Some(0)), t0 + lease).len(), 1);
    }

    #[test]
    fn an_unreadable_revision_is_not_judged_and_keeps_the_clock() {
        let lease = Duration::from_secs(30);
        let mut watch = LeaseWatch::new(lease);
        let t0 = Instant::now();
        assert!(watch.check(&beats(Some(3)), t0).is_empty());
        assert!(watch.check(&beats(None), t0 + lease).is_empty());
        assert_eq!(watch.check(&beats(Some(3)), t0 + lease).len(), 1);
    }

    #[test]
    fn an_executor_holding_nothing_is_forgotten() {
        let lease = Duration::from_secs(30);
        let mut watch = LeaseWatch::new(lease);
        let t0 = Instant::now();
        assert!(watch.check(&beats(Some(3)), t0).is_empty());
        assert!(watch.check(&BTreeMap::new(), t0 + lease / 2).is_empty());
        assert!(
            watch.check(&beats(Some(3)), t0 + lease).is_empty(),
            "its clock started again when it held runs again"
        );
    }

    #[test]
    fn the_command_id_names_executor_and_revision() {
        let a = Expired {
            executor: "e1".into(),
            revision: 2,
        };
        let b = Expired {
            executor: "e1".into(),
            revision: 3,
        };
        assert_eq!(a.command_id(), a.clone().command_id());
        assert_ne!(a.command_id(), b.command_id());
    }
}
