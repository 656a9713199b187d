//! Listing against a real Postgres log: full pages, catching up, `to`, `until` and the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use runledger_audit::{Listing, Next};
use runledger_store::AuditFilter;

/// Five events of a run's life at second 1, then 1200 heartbeats at second 2 (positions 6–1205).
async fn busy_log() -> Log {
    let mut log = Log::create().await;
    let mut events = a_run_from_start_to_end();
    events.truncate(5);
    log.append(events, second(1)).await;
    log.append((0..1200).map(|_| heartbeat()).collect(), second(2))
        .await;
    log
}

fn heartbeats() -> AuditFilter {
    AuditFilter {
        types: vec!["executor_heartbeat".into()],
        ..AuditFilter::default()
    }
}

/// The positions and `next` of each page until `Done` or the `n`th page.
async fn pages(listing: &mut Listing<'_>, n: usize) -> Vec<(Vec<i64>, Next)> {
    let mut pages = Vec::new();
    for _ in 0..n {
        let page = listing.next_page().await.unwrap();
        let positions = page.events.iter().map(|e| e.position).collect();
        let next = page.next;
        pages.push((positions, next));
        if next == Next::Done {
            break;
        }
    }
    pages
}

fn summary(pages: &[(Vec<i64>, Next)]) -> Vec<(usize, Option<i64>, Option<i64>, Next)> {
    pages
        .iter()
        .map(|(p, next)| (p.len(), p.first().copied(), p.last().copied(), *next))
        .collect()
}

#[tokio::test]
async fn a_listing_pages_until_caught_up_and_ends_at_to_or_its_limit() {
    let log = busy_log().await;
    let mut all = Listing::new(&log.store, heartbeats(), None);
    assert_eq!(
        summary(&pages(&mut all, 3).await),
        [
            (1000, Some(6), Some(1005), Next::More),
            (200, Some(1006), Some(1205), Next::CaughtUp),
            (0, None, None, Next::CaughtUp),
        ]
    );

    let to = AuditFilter {
        from: Some(100),
        to: Some(1100),
        ..heartbeats()
    };
    let mut bounded = Listing::new(&log.store, to, None);
    assert_eq!(
        summary(&pages(&mut bounded, 3).await),
        [
            (1000, Some(100), Some(1099), Next::More),
            (1, Some(1100), Some(1100), Next::Done),
        ]
    );

    let mut limited = Listing::new(&log.store, AuditFilter::default(), Some(7));
    let limited = pages(&mut limited, 3).await;
    assert_eq!(limited, [(vec![1, 2, 3, 4, 5, 6, 7], Next::Done)]);
    log.cleanup().await;
}

#[tokio::test]
async fn a_listing_until_a_time_long_past_is_done_once_caught_up() {
    let log = busy_log().await;
    let until = AuditFilter {
        until: Some(second(2)),
        ..AuditFilter::default()
    };
    let mut listing = Listing::new(&log.store, until, None);
    assert_eq!(
        pages(&mut listing, 3).await,
        [(vec![1, 2, 3, 4, 5], Next::Done)],
        "until is exclusive, and no event can still commit before it"
    );
    log.cleanup().await;
}
