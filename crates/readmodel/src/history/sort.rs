//! The sorts of the run history and the keyset cursors that page through them.

use super::HistoryError;

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

    pub(crate) fn label(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.key.name()
        )
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
}
