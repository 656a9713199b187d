//! Executor liveness: a JetStream key-value bucket, one key per executor, that each executor
//! overwrites every few seconds. Liveness is not history, so it stays out of the event log: the
//! handler's lease watch reads a key's revision, and only what it decides from it (a lease
//! expiring) becomes a command and events.
//!
//! The bucket keeps one value per key and forgets keys no executor has written for
//! [`LIVENESS_MAX_AGE`]; a key's revision (a stream sequence of the bucket, so it only grows)
//! tells a watcher whether the executor wrote since it last looked.

use crate::names::BusNames;
use async_nats::jetstream::{self, kv, stream};
use runledger_types::RunId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a key outlives its executor's last write: long enough for any lease, short enough
/// that the bucket does not collect every executor that ever ran.
pub const LIVENESS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What an executor writes on each beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// The executor's name (the key is an escaped form of it).
    pub executor: String,
    /// The runs it drives right now, ascending.
    pub run_ids: Vec<RunId>,
}

/// Why liveness could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    /// The bucket could not be opened or created.
    #[error("cannot open the liveness bucket {bucket}: {source}")]
    Bucket {
        /// The bucket's name.
        bucket: String,
        /// The server's or client's error.
        #[source]
        source: async_nats::Error,
    },
    /// A beat could not be written.
    #[error("cannot write the liveness of executor {executor}: {source}")]
    Write {
        /// The executor.
        executor: String,
        /// The server's or client's error.
        #[source]
        source: async_nats::Error,
    },
    /// A key could not be read.
    #[error("cannot read the liveness of executor {executor}: {source}")]
    Read {
        /// The executor.
        executor: String,
        /// The server's or client's error.
        #[source]
        source: async_nats::Error,
    },
    /// A beat could not be encoded.
    #[error("cannot encode a beat: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The liveness bucket of one prefix; cheap to clone.
#[derive(Debug, Clone)]
pub struct Liveness {
    store: kv::Store,
}

impl Liveness {
    /// Opens the bucket `<PREFIX>_EXECUTORS`, creating it when it is missing.
    pub async fn open(js: &jetstream::Context, names: &BusNames) -> Result<Self, LivenessError> {
        let bucket = names.liveness_bucket();
        let failed = |source: async_nats::Error| LivenessError::Bucket {
            bucket: bucket.clone(),
            source,
        };
        // The bucket's stream is made by hand: the client's own bucket creation asks the server
        // for account details that NATS 2.9 answers in a form it cannot read. The settings are
        // those of a key-value bucket with a history of one.
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("runledger: the last beat of each executor".into()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: LIVENESS_MAX_AGE,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            duplicate_window: Duration::from_secs(120),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|err| failed(err.into()))?;
        let store = js
            .get_key_value(bucket.as_str())
            .await
            .map_err(|err| failed(err.into()))?;
        Ok(Self { store })
    }

    /// Writes `beat` as its executor's latest; returns the key's new revision.
    pub async fn beat(&self, beat: &Beat) -> Result<u64, LivenessError> {
        let value = serde_json::to_vec(beat)?;
        self.store
            .put(key_of(&beat.executor), value.into())
            .await
            .map_err(|source| LivenessError::Write {
                executor: beat.executor.clone(),
                source: source.into(),
            })
    }

    /// The revision of `executor`'s latest beat; 0 when it has none in the bucket.
    pub async fn revision(&self, executor: &str) -> Result<u64, LivenessError> {
        let entry =
            self.store
                .entry(key_of(executor))
                .await
                .map_err(|source| LivenessError::Read {
                    executor: executor.to_owned(),
                    source: source.into(),
                })?;
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .map_or(0, |entry| entry.revision))
    }
}

/// The key of `executor`: letters, digits, `-` and `_` as they are, every other byte as `=XX`
/// (`=` is a valid key character that names cannot be confused with), so any executor name
/// gives one valid key and no two names the same.
pub fn key_of(executor: &str) -> String {
    let mut key = String::with_capacity(executor.len());
    for byte in executor.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            key.push(char::from(byte));
        } else {
            key.push_str(&format!("={byte:02X}"));
        }
    }
    if key.is_empty() {
        key.push('=');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn keys_keep_plain_names_and_escape_the_rest() {
        assert_eq!(key_of("lab-host-1_a"), "lab-host-1_a");
        assert_eq!(key_of("a.b"), "a=2Eb");
        assert_eq!(
            key_of("a=2Eb"),
            "a=3D2Eb",
            "an escape-like name cannot collide"
        );
        assert_eq!(key_of("é"), "=C3=A9");
        assert_eq!(key_of(""), "=");
    }
}
