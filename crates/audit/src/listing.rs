//! The events matching a filter, in log order, a page at a time: what `runledger audit
//! [filters] [--follow]` prints. A [`Listing`] knows where it is, how many events `--limit` still
//! allows, and whether anything more can match, so a follower knows when to wait and when to stop.

use crate::{AuditError, PAGE};
use chrono::{DateTime, Utc};
use runledger_store::{AuditFilter, EventStore};
use runledger_types::EventRecord;

/// How long after its `recorded_at` an event is surely committed (and so visible).
const COMMIT_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// One listing in progress.
#[derive(Debug)]
pub struct Listing<'a> {
    store: &'a EventStore,
    filter: AuditFilter,
    /// Every event up to here was listed or did not match.
    after: i64,
    /// How many more events the limit allows.
    remaining: Option<i64>,
}

/// One page of matching events, and what may come after it.
#[derive(Debug)]
pub struct Page {
    /// The events, in log order.
    pub events: Vec<EventRecord>,
    /// What to do next.
    pub next: Next,
}

/// Where a listing stands after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The page was full: ask for the next one at once.
    More,
    /// Everything up to the head is listed; later events may still match.
    CaughtUp,
    /// Nothing more can match (`to` reached, `until` passed) or the limit is used up.
    Done,
}

impl<'a> Listing<'a> {
    /// A listing of the events `filter` selects, at most `limit` of them.
    pub fn new(store: &'a EventStore, filter: AuditFilter, limit: Option<i64>) -> Self {
        Self {
            store,
            after: filter.from.map_or(0, |from| from - 1),
            filter,
            remaining: limit,
        }
    }

    /// The next page of matching events.
    pub async fn next_page(&mut self) -> Result<Page, AuditError> {
        // Positions are a gap-free prefix `1..=head`: every event up to `bound` is visible now,
        // so once a page comes back short, nothing up to `bound` is left to list.
        let asked_at = Utc::now();
        let head = self.store.head().await?;
        let bound = self.filter.to.map_or(head, |to| to.min(head));
        let want = self.remaining.map_or(PAGE, |remaining| remaining.min(PAGE));
        let bounded = AuditFilter {
            to: Some(bound),
            ..self.filter.clone()
        };
        let events = self.store.audit_page(&bounded, self.after, want).await?;
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        self.remaining = self.remaining.map(|remaining| remaining - count);
        let next = if self.remaining == Some(0) {
            Next::Done
        } else if count < want {
            self.after = self.after.max(bound);
            let complete =
                self.filter.to.is_some_and(|to| bound >= to) || self.until_passed(asked_at);
            if complete { Next::Done } else { Next::CaughtUp }
        } else {
            self.after = events.last().map_or(self.after, |record| record.position);
            Next::More
        };
        Ok(Page { events, next })
    }

    /// True when no event committed from now on can fall before `until`: events are stamped
    /// when decided, and committed well within [`COMMIT_MARGIN`] of it.
    fn until_passed(&self, asked_at: DateTime<Utc>) -> bool {
        self.filter
            .until
            .is_some_and(|until| until + COMMIT_MARGIN < asked_at)
    }
}
