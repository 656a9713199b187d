//! Verifying the log against its seals: recompute the chain from genesis and name the first
//! position where the log and its seals disagree.
//!
//! Safe to run while the service appends and seals: the log head is read first and events up to
//! it must all be there; seals and events committed during the walk are checked as far as the
//! walk gets, or left for the next run.

use crate::EventStore;
use crate::error::StoreError;
use crate::seal::{ChainHash, GENESIS, chain_hash};
use runledger_types::RawEventRecord;
use std::collections::VecDeque;
use std::fmt;

/// Events (and seals) read per query.
const PAGE: i64 = 10_000;

/// What is wrong at the first bad position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The chain hash recomputed from the events does not match the stored seal: the event (or
    /// its seal) was changed, or an event was moved here.
    Altered,
    /// Like [`Problem::Altered`], and the event here is out of order within its own stream: an
    /// event of the same stream with a lower version sits at a later position, or the reverse.
    Reordered,
    /// No event at this position although later events exist, the log head is past it, or it was
    /// sealed: an event was removed.
    Missing,
    /// The event is there but its seal is not, although later events are sealed.
    SealMissing,
    /// An event lies beyond the recorded log head (`log_head` was lowered, or a row added).
    BeyondHead,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Altered => "event altered: its chain hash does not match its seal",
            Self::Reordered => "events reordered: the event is out of order within its stream",
            Self::Missing => "event missing: it was removed from the log",
            Self::SealMissing => "seal missing: the event is there but its seal was removed",
            Self::BeyondHead => "event beyond the log head: the recorded head is too low",
        })
    }
}

/// The result of [`EventStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events found intact (all of them when there is no problem; those before it otherwise).
    pub checked: i64,
    /// The last position whose seal matched.
    pub sealed_through: i64,
    /// The chain hash at `sealed_through` ([`GENESIS`] when nothing is sealed): record it outside
    /// the database to catch a later rewrite of both events and seals.
    pub sealed_hash: ChainHash,
    /// Checked events after the last seal: the sealer lags behind by design, so not a problem.
    pub unsealed: i64,
    /// The log head (the position of the last committed event).
    pub head: i64,
    /// The first bad position and what is wrong there; `None` when the log is intact.
    pub first_problem: Option<(i64, Problem)>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_intact(&self) -> bool {
        self.first_problem.is_none()
    }

    /// [`VerifyReport::sealed_hash`] in lowercase hex.
    pub fn sealed_hash_hex(&self) -> String {
        self.sealed_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first_problem {
            None => write!(
                f,
                "event log intact: {} events checked (head {}), sealed through position {} \
                 with chain hash {}, {} not sealed yet",
                self.checked,
                self.head,
                self.sealed_through,
                self.sealed_hash_hex(),
                self.unsealed
            ),
            Some((position, problem)) => write!(
                f,
                "event log TAMPERED at position {position}: {problem} ({} events before it are \
                 intact, sealed through {}; head {})",
                self.checked, self.sealed_through, self.head
            ),
        }
    }
}

/// The stored seals, read a page at a time alongside the events.
struct Seals {
    buffer: VecDeque<(i64, Vec<u8>)>,
    after: i64,
    exhausted: bool,
}

impl Seals {
    /// The next seal not yet matched; once none is left, later seals are not looked for (they
    /// were written during the walk, and their events count as unsealed).
    async fn peek(&mut self, store: &EventStore) -> Result<Option<&(i64, Vec<u8>)>, StoreError> {
        if self.buffer.is_empty() && !self.exhausted {
            self.buffer = store.seals_after(self.after, PAGE).await?.into();
            match self.buffer.back() {
                Some((position, _)) => self.after = *position,
                None => self.exhausted = true,
            }
        }
        Ok(self.buffer.front())
    }
}

/// The walk from genesis: where the recomputed chain stands.
struct Walk<'a> {
    store: &'a EventStore,
    seals: Seals,
    prev: ChainHash,
    next: i64,
    report: VerifyReport,
}

impl Walk<'_> {
    /// Checks one event; returns the problem at its position (or at the gap before it).
    async fn step(&mut self, event: &RawEventRecord) -> Result<Option<(i64, Problem)>, StoreError> {
        if event.position != self.next {
            return Ok(Some((self.next, Problem::Missing)));
        }
        let hash = chain_hash(&self.prev, event);
        let seal = self.seals.peek(self.store).await?;
        match seal {
            Some((position, stored)) if *position == event.position => {
                if stored.as_slice() != hash.as_slice() {
                    let problem = self.store.altered_or_reordered(event).await?;
                    return Ok(Some((event.position, problem)));
                }
                self.seals.buffer.pop_front();
                self.report.sealed_through = event.position;
                self.report.sealed_hash = hash;
            }
            Some(_) => return Ok(Some((event.position, Problem::SealMissing))),
            None => self.report.unsealed += 1,
        }
        self.prev = hash;
        self.next += 1;
        self.report.checked += 1;
        Ok(None)
    }

    /// After the last event read: events up to `start_head` must all exist, a seal must not
    /// outlive its event, and no event may lie beyond the head.
    async fn tail(&mut self, start_head: i64) -> Result<Option<(i64, Problem)>, StoreError> {
        let last = self.next - 1;
        if last < start_head {
            return Ok(Some((self.next, Problem::Missing)));
        }
        // A seal is written only after its event commits: a seal past the last event read, with
        // no event after it now, outlived a removed event.
        if !self.store.seals_after(last, 1).await?.is_empty()
            && self.store.read_after_raw(last, 1).await?.is_empty()
        {
            return Ok(Some((self.next, Problem::Missing)));
        }
        self.report.head = self.store.head().await?;
        if last > self.report.head {
            return Ok(Some((self.report.head + 1, Problem::BeyondHead)));
        }
        Ok(None)
    }
}

impl EventStore {
    /// Recomputes the hash chain from genesis over the whole log and compares it with the seals,
    /// reporting the first bad position. Events after the last seal are checked for gaps only
    /// (counted as unsealed). Errors only when the database fails.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let start_head = self.head().await?;
        let mut walk = Walk {
            store: self,
            seals: Seals {
                buffer: VecDeque::new(),
                after: 0,
                exhausted: false,
            },
            prev: GENESIS,
            next: 1,
            report: VerifyReport {
                checked: 0,
                sealed_through: 0,
                sealed_hash: GENESIS,
                unsealed: 0,
                head: start_head,
                first_problem: None,
            },
        };
        walk.report.first_problem = walk_log(&mut walk, start_head).await?;
        Ok(walk.report)
    }

    async fn seals_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT position, chain_hash FROM event_seals WHERE position > $1 \
             ORDER BY position LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Tells a moved event from an altered one: is it out of order within its own stream?
    async fn altered_or_reordered(&self, event: &RawEventRecord) -> Result<Problem, StoreError> {
        let out_of_order: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND position <> $3 AND \
             ((stream_version < $2 AND position > $3) OR (stream_version > $2 AND position < $3)))",
        )
        .bind(event.stream_id.as_str())
        .bind(event.stream_version)
        .bind(event.position)
        .fetch_one(&self.pool)
        .await?;
        Ok(if out_of_order {
            Problem::Reordered
        } else {
            Problem::Altered
        })
    }
}

/// Pages through the log up to (at least) `start_head`, then checks the tail.
async fn walk_log(
    walk: &mut Walk<'_>,
    start_head: i64,
) -> Result<Option<(i64, Problem)>, StoreError> {
    let mut after = 0;
    loop {
        let page = walk.store.read_after_raw(after, PAGE).await?;
        for event in &page {
            if let Some(problem) = walk.step(event).await? {
                return Ok(Some(problem));
            }
        }
        after = page.last().map_or(after, |event| event.position);
        if (page.len() as i64) < PAGE || after >= start_head {
            break;
        }
    }
    walk.tail(start_head).await
}
