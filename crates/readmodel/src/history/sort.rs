//! The sorts of the run history and the keyset cursors that page through them.

use super::HistoryError;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What the history can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// When the run was requested.
    QueuedAt,
    /// When it started (runs that never started come last).
    StartedAt,
    /// When it finished (unfinished runs come last).
    FinishedAt,
    /// How long it ran (runs that never ran come last).
    Duration,
}

impl SortKey {
    pub(super) fn column(self) -> &'static str {
        match self {
            Self::QueuedAt => "queued_at",
            Self::StartedAt => "started_at",
            Self::FinishedAt => "finished_at",
            Self::Duration => "duration_ms",
        }
    }

    /// The time column `since` and `until` apply to: the sort's, when it is a time.
    pub(super) fn time_column(self) -> &'static str {
        match self {
            Self::StartedAt => "started_at",
            Self::FinishedAt => "finished_at",
            Self::QueuedAt | Self::Duration => "queued_at",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::QueuedAt => "queued_at",
            Self::StartedAt => "started_at",
            Self::FinishedAt => "finished_at",
            Self::Duration => "duration",
        }
    }
}

/// A sort: key and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub key: SortKey,
    /// Newest / longest first.
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first: `-queued_at`.
    fn default() -> Self {
        Self {
            key: SortKey::QueuedAt,
            descending: true,
        }
    }
}

impl Sort {
    /// Parses `queued_at`, `-started_at`, `duration`, ... (default `-queued_at`).
    pub fn parse(raw: Option<&str>) -> Result<Self, HistoryError> {
        let raw = raw.unwrap_or("-queued_at");
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let key = match name {
            "queued_at" => SortKey::QueuedAt,
            "started_at" => SortKey::StartedAt,
            "finished_at" => SortKey::FinishedAt,
            "duration" | "duration_ms" => SortKey::Duration,
            other => return Err(HistoryError::UnknownSort(other.to_owned())),
        };
        Ok(Self { key, descending })
    }

    pub(super) fn label(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.key.name()
        )
    }
}

/// Where a page ends: the last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    /// The sort it belongs to.
    pub(super) sort: String,
    /// The last row's sort value (a time, a number, or null).
    pub(super) value: Value,
    /// The last row's id.
    pub(super) run_id: Uuid,
}

impl Cursor {
    pub(super) fn encode(&self) -> String {
        // A struct of a string, a JSON value and a uuid always serialises.
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub(super) fn decode(raw: &str, sort: Sort) -> Result<Self, HistoryError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| HistoryError::NotACursor)?;
        let cursor: Cursor =
            serde_json::from_slice(&bytes).map_err(|_| HistoryError::NotACursor)?;
        if cursor.sort != sort.label() {
            return Err(HistoryError::OtherSort {
                cursor: cursor.sort,
                sort: sort.label(),
            });
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_parse_with_direction_and_refuse_unknown_keys() {
        let sort = Sort::parse(Some("-started_at")).unwrap_or_else(|_| unreachable!());
        assert_eq!((sort.key, sort.descending), (SortKey::StartedAt, true));
        let sort = Sort::parse(None).unwrap_or_else(|_| unreachable!());
        assert_eq!((sort.key, sort.descending), (SortKey::QueuedAt, true));
        assert_eq!(sort, Sort::default());
        assert!(Sort::parse(Some("color")).is_err());
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_sort() {
        let sort = Sort::parse(Some("duration")).unwrap_or_else(|_| unreachable!());
        let cursor = Cursor {
            sort: sort.label(),
            value: serde_json::json!(42),
            run_id: Uuid::nil(),
        };
        let encoded = cursor.encode();
        assert_eq!(Cursor::decode(&encoded, sort).ok(), Some(cursor));
        let other = Sort::parse(Some("-duration")).unwrap_or_else(|_| unreachable!());
        assert!(Cursor::decode(&encoded, other).is_err());
        assert!(Cursor::decode("not-a-cursor", sort).is_err());
    }
}
