//! Loading a generated log into an empty, migrated database.

use super::{COPY_EVENTS, LogWriter, Sim, SimSettings};
use anyhow::ensure;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Bytes of COPY text sent per message.
const CHUNK: usize = 4 << 20;

/// What [`load`] wrote.
#[derive(Debug)]
pub struct Loaded {
    /// Events of each type.
    pub counts: BTreeMap<&'static str, u64>,
    /// Bytes of COPY text sent.
    pub bytes: usize,
    /// Runs still waiting in a queue at the end of the log.
    pub still_queued: usize,
    /// Generating and copying (they overlap), with the log head set.
    pub copy: Duration,
    /// The VACUUM ANALYZE after it.
    pub vacuum: Duration,
}

impl Loaded {
    /// How many events of `event_type` were written.
    pub fn count(&self, event_type: &str) -> i64 {
        self.counts
            .get(event_type)
            .map_or(0, |&count| i64::try_from(count).unwrap_or(i64::MAX))
    }
}

/// Generates a log of exactly `events` events with `settings` and streams it into `events` with
/// one `COPY ... FROM STDIN` (text format, sent in 4 MiB messages), sets `log_head`, then runs
/// `VACUUM (ANALYZE) events` so the log is read as one that has been read before (hint bits and
/// visibility map set).
pub async fn load(pool: &PgPool, settings: SimSettings, events: i64) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let mut sim = Sim::new(settings)?;
    let mut log = LogWriter::new(events);
    let mut connection = pool.acquire().await?;
    let mut copy = connection.copy_in_raw(COPY_EVENTS).await?;
    sim.setup(&mut log)?;
    ensure!(
        log.position() < events,
        "{events} events: fewer than the lab's setup"
    );
    let mut bytes = 0;
    while log.position() < events {
        let room = events - log.position();
        sim.step(&mut log, room)?;
        if log.buffered() >= CHUNK {
            let chunk = log.take();
            bytes += chunk.len();
            copy.send(chunk).await?;
        }
    }
    let chunk = log.take();
    bytes += chunk.len();
    copy.send(chunk).await?;
    let rows = copy.finish().await?;
    ensure!(
        i64::try_from(rows)? == events,
        "COPY stored {rows} rows, not {events}"
    );
    sqlx::query("UPDATE log_head SET position = $1")
        .bind(events)
        .execute(&mut *connection)
        .await?;
    let copied = started.elapsed();
    sqlx::query("VACUUM (ANALYZE) events")
        .execute(&mut *connection)
        .await?;
    Ok(Loaded {
        counts: log.counts().clone(),
        bytes,
        still_queued: sim.queued(),
        copy: copied,
        vacuum: started.elapsed() - copied,
    })
}
