//! Tamper evidence: a SHA-256 hash chain over the log, stored in `event_seals`.
//!
//! The seal of position `n` is `chain_hash(seal of n-1, event n)`, starting from [`GENESIS`].
//! Each link covers every field of its event and the hash before it, so altering, removing or
//! moving a sealed event breaks the chain at that position and at every later one.
//! [`EventStore::seal_pending`] extends the chain; [`EventStore::verify`] recomputes it.

use crate::EventStore;
use crate::error::StoreError;
use crate::leader::LeaderLock;
use runledger_types::RawEventRecord;
use sha2::{Digest, Sha256};

/// One link of the chain: a SHA-256 digest.
pub type ChainHash = [u8; 32];

/// The hash before position 1: 32 zero bytes.
pub const GENESIS: ChainHash = [0; 32];

/// The name of the transaction-scoped lock that lets one sealer work at a time.
const SEAL_LOCK: &str = "runledger sealer";

/// Feeds length-prefixed fields to a hasher: each is an 8-byte big-endian length, then the bytes.
struct Fields(Sha256);

impl Fields {
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    fn int(&mut self, value: i64) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    /// A present id is 16 bytes; an absent one is empty, so the two cannot be confused.
    fn id(&mut self, id: Option<uuid::Uuid>) -> &mut Self {
        match id {
            Some(id) => self.bytes(id.as_bytes()),
            None => self.bytes(&[]),
        }
    }
}

/// The next link: SHA-256 over `prev` and every field of `event` as read back from Postgres.
///
/// After the 32 bytes of `prev` come, in this order and each as an 8-byte big-endian length
/// followed by its bytes: position (i64, big-endian), event id (16 bytes), stream id (UTF-8),
/// stream version (i64), type (UTF-8), schema version (i32, big-endian), recorded_at (i64
/// microseconds since the Unix epoch, Postgres's precision), actor (UTF-8), command id (16 bytes),
/// correlation id and causation id (16 bytes, or empty when absent), and `data` (the `data::text`
/// of the jsonb column, which Postgres prints the same way for equal values).
pub fn chain_hash(prev: &ChainHash, event: &RawEventRecord) -> ChainHash {
    let mut fields = Fields(Sha256::new());
    fields.0.update(prev);
    fields
        .int(event.position)
        .id(Some(event.event_id.0))
        .text(event.stream_id.as_str())
        .int(event.stream_version)
        .text(&event.event_type)
        .bytes(&event.schema_version.to_be_bytes())
        .int(event.recorded_at.timestamp_micros())
        .text(&event.actor)
        .id(Some(event.command_id.0))
        .id(event.correlation_id)
        .id(event.causation_id)
        .text(event.data.get());
    fields.0.finalize().into()
}

/// The seals that extend the chain from (`last`, `prev`) over `events`, up to the first gap: a
/// missing position means a removed event, and is never sealed over. Fails when the gap comes
/// first, so nothing can be sealed.
fn links(
    last: i64,
    mut prev: ChainHash,
    events: &[RawEventRecord],
) -> Result<(Vec<i64>, Vec<Vec<u8>>), StoreError> {
    let mut positions = Vec::with_capacity(events.len());
    let mut hashes = Vec::with_capacity(events.len());
    for (expected, event) in (last + 1..).zip(events) {
        if event.position != expected {
            if positions.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "the event at position {expected} is missing (the next one is at {}): \
                     refusing to seal over a gap",
                    event.position
                )));
            }
            break;
        }
        prev = chain_hash(&prev, event);
        positions.push(event.position);
        hashes.push(prev.to_vec());
    }
    Ok((positions, hashes))
}

/// Decodes a stored hash, refusing one of the wrong length.
pub(crate) fn stored_hash(position: i64, bytes: &[u8]) -> Result<ChainHash, StoreError> {
    bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "the seal at position {position} is {} bytes, not 32",
            bytes.len()
        ))
    })
}

impl EventStore {
    /// The last seal: its position and hash, or `(0, GENESIS)` when nothing is sealed yet.
    pub async fn last_seal(&self) -> Result<(i64, ChainHash), StoreError> {
        last_seal(&mut *self.pool.acquire().await?).await
    }

    /// Seals up to `max` events after the last seal and returns the position sealed through.
    ///
    /// The events are read first (one connection at a time is enough); then one transaction
    /// takes the sealer's [`LeaderLock`] for the transaction (without waiting: when another
    /// sealer holds it, this call seals nothing), checks the last seal has not moved meanwhile,
    /// and inserts the new seals. The chain is never extended over a gap in the positions (a
    /// removed event): the events before it are sealed, and the next call, finding the gap
    /// first, fails with [`StoreError::Corrupt`] naming the missing position.
    pub async fn seal_pending(&self, max: i64) -> Result<i64, StoreError> {
        let (last, prev) = self.last_seal().await?;
        let events = self.read_after_raw(last, max).await?;
        let (positions, hashes) = links(last, prev, &events)?;
        let Some(&through) = positions.last() else {
            return Ok(last);
        };
        let mut tx = self.pool.begin().await?;
        let won = LeaderLock::named(SEAL_LOCK).try_take_in(&mut tx).await?;
        let (now_last, _) = last_seal(&mut tx).await?;
        if !won || now_last != last {
            tx.rollback().await?;
            return Ok(now_last);
        }
        sqlx::query(
            "INSERT INTO event_seals (position, chain_hash) \
             SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
        )
        .bind(&positions)
        .bind(&hashes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(through)
    }
}

async fn last_seal(conn: &mut sqlx::PgConnection) -> Result<(i64, ChainHash), StoreError> {
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT position, chain_hash FROM event_seals ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    match row {
        Some((position, bytes)) => Ok((position, stored_hash(position, &bytes)?)),
        None => Ok((0, GENESIS)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use runledger_types::{CommandId, EventId, EventRecord, StreamId};
    use serde_json::value::RawValue;

    fn event(position: i64) -> RawEventRecord {
        EventRecord {
            event_id: EventId(uuid::Uuid::from_u128(7)),
            position,
            stream_id: StreamId::executor("a"),
            stream_version: position,
            event_type: "executor_heartbeat".into(),
            schema_version: 1,
            recorded_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap(),
            actor: "test".into(),
            command_id: CommandId(uuid::Uuid::from_u128(9)),
            correlation_id: None,
            causation_id: Some(uuid::Uuid::from_u128(9)),
            data: RawValue::from_string(r#"{"executor": "a", "run_ids": []}"#.into()).unwrap(),
        }
    }

    #[test]
    fn the_hash_is_deterministic_and_depends_on_the_previous_link() {
        let one = event(1);
        assert_eq!(chain_hash(&GENESIS, &one), chain_hash(&GENESIS, &one));
        assert_ne!(chain_hash(&GENESIS, &one), chain_hash(&[1; 32], &one));
        assert_ne!(chain_hash(&GENESIS, &one), GENESIS);
    }

    #[test]
    fn every_field_is_covered() {
        let base = chain_hash(&GENESIS, &event(1));
        let changes: Vec<fn(&mut RawEventRecord)> = vec![
            |e| e.position = 2,
            |e| e.event_id = EventId(uuid::Uuid::from_u128(8)),
            |e| e.stream_id = StreamId::from_stored(format!("{}x", e.stream_id)),
            |e| e.stream_version = 2,
            |e| e.event_type.push('x'),
            |e| e.schema_version = 2,
            |e| e.recorded_at += chrono::Duration::microseconds(1),
            |e| e.actor.push('x'),
            |e| e.command_id = CommandId(uuid::Uuid::from_u128(8)),
            |e| e.correlation_id = Some(uuid::Uuid::nil()),
            |e| e.causation_id = None,
            |e| {
                e.data =
                    RawValue::from_string(r#"{"executor": "b", "run_ids": []}"#.into()).unwrap()
            },
        ];
        for (index, change) in changes.iter().enumerate() {
            let mut changed = event(1);
            change(&mut changed);
            assert_ne!(chain_hash(&GENESIS, &changed), base, "change {index}");
        }
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut left = event(1);
        left.stream_id = StreamId::from_stored("ab".into());
        left.event_type = "c".into();
        let mut right = event(1);
        right.stream_id = StreamId::from_stored("a".into());
        right.event_type = "bc".into();
        assert_ne!(chain_hash(&GENESIS, &left), chain_hash(&GENESIS, &right));
    }

    #[test]
    fn links_continue_the_chain_and_refuse_gaps() {
        let (positions, hashes) = links(0, GENESIS, &[event(1), event(2)]).unwrap();
        assert_eq!(positions, [1, 2]);
        let first = chain_hash(&GENESIS, &event(1));
        assert_eq!(hashes[0], first);
        assert_eq!(hashes[1], chain_hash(&first, &event(2)));
        let err = links(0, GENESIS, &[event(2), event(3)]).unwrap_err();
        assert!(err.to_string().contains("position 1 is missing"), "{err}");
        let (before_gap, _) = links(0, GENESIS, &[event(1), event(3)]).unwrap();
        assert_eq!(before_gap, [1], "sealed up to the gap");
    }
}
