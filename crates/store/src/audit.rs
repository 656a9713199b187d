//! Audit queries: the log filtered by stream, type, actor, time and position, in position order,
//! a page at a time (for `runledger audit`).
//!
//! Every value a caller gives is bound as a query parameter; none is ever formatted into SQL.

use crate::EventStore;
use crate::error::StoreError;
use crate::read::{event_columns, parsed_record};
use chrono::{DateTime, Utc};
use runledger_types::EventRecord;
use sqlx::{Postgres, QueryBuilder};

/// Which events an audit query returns.
///
/// Every criterion that is given must hold; within one list any entry may match
/// (`types: ["run_queued", "run_assigned"]` is one type *or* the other). An empty list and `None`
/// do not restrict anything, so [`AuditFilter::default`] matches the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Stream ids (`run-0193…`, recognised by their `-`) or stream types (`run`, `machine`,
    /// `test_case`, …, without a `-`), which stand for every stream of that type.
    pub streams: Vec<String>,
    /// Event types, e.g. `run_assigned`.
    pub types: Vec<String>,
    /// Actors exactly as recorded, e.g. `admin` or `executor:e1`.
    pub actors: Vec<String>,
    /// Correlation ids: every event of a chain started by one command (a run's, from
    /// `start_run` through the executor's reports to `run_finished`).
    pub correlations: Vec<uuid::Uuid>,
    /// Only events with `recorded_at` at or after this instant (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Only events with `recorded_at` strictly before this instant (exclusive), so
    /// `since = t, until = t + 1h` and `since = t + 1h` never share an event.
    pub until: Option<DateTime<Utc>>,
    /// Only events at this position or later (inclusive).
    pub from: Option<i64>,
    /// Only events at this position or earlier (inclusive).
    pub to: Option<i64>,
}

impl AuditFilter {
    /// Appends ` AND …` for every criterion, binding each value.
    fn push_conditions<'a>(&'a self, query: &mut QueryBuilder<'a, Postgres>) {
        self.push_streams(query);
        if !self.types.is_empty() {
            query
                .push(" AND type = ANY(")
                .push_bind(&self.types)
                .push(")");
        }
        if !self.actors.is_empty() {
            query
                .push(" AND actor = ANY(")
                .push_bind(&self.actors)
                .push(")");
        }
        if !self.correlations.is_empty() {
            query
                .push(" AND correlation_id = ANY(")
                .push_bind(&self.correlations)
                .push(")");
        }
        if let Some(since) = self.since {
            query.push(" AND recorded_at >= ").push_bind(since);
        }
        if let Some(until) = self.until {
            query.push(" AND recorded_at < ").push_bind(until);
        }
        if let Some(from) = self.from {
            query.push(" AND position >= ").push_bind(from);
        }
        if let Some(to) = self.to {
            query.push(" AND position <= ").push_bind(to);
        }
    }

    /// ` AND (stream_id = ANY(ids) OR stream_id LIKE 'type-%' …)`.
    fn push_streams<'a>(&'a self, query: &mut QueryBuilder<'a, Postgres>) {
        if self.streams.is_empty() {
            return;
        }
        let (ids, kinds): (Vec<&String>, Vec<&String>) =
            self.streams.iter().partition(|stream| stream.contains('-'));
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        query
            .push(" AND (stream_id = ANY(")
            .push_bind(ids)
            .push(")");
        for kind in kinds {
            query
                .push(" OR stream_id LIKE ")
                .push_bind(type_pattern(kind))
                .push(" ESCAPE '\\'");
        }
        query.push(")");
    }
}

/// The `LIKE` pattern for every stream of type `kind`: `kind` with `\`, `%` and `_` escaped
/// (`test_case` must not match `testXcase-…`), then `-%`.
fn type_pattern(kind: &str) -> String {
    let mut pattern = String::with_capacity(kind.len() + 4);
    for c in kind.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("-%");
    pattern
}

impl EventStore {
    /// Up to `limit` events after position `after` that match `filter`, in position order.
    ///
    /// Page through a query by passing the last position of one page as the next `after`. Like
    /// [`EventStore::read_after`] this is gap-safe: a later page never misses an event that
    /// commits after an earlier page was read.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut query = QueryBuilder::new(concat!(
            "SELECT ",
            event_columns!(),
            ", data FROM events WHERE position > "
        ));
        query.push_bind(after);
        filter.push_conditions(&mut query);
        query.push(" ORDER BY position LIMIT ").push_bind(limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(parsed_record).collect::<Result<_, _>>()?)
    }

    /// The position of the last event recorded at or before `time` (0 when there is none): the
    /// log as it stood at `time`.
    pub async fn position_at(&self, time: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(max(position), 0) FROM events WHERE recorded_at <= $1",
        )
        .bind(time)
        .fetch_one(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_type_patterns_escape_like_wildcards() {
        assert_eq!(type_pattern("run"), "run-%");
        assert_eq!(type_pattern("test_case"), "test\\_case-%");
        assert_eq!(type_pattern("a%b\\c"), "a\\%b\\\\c-%");
    }

    #[test]
    fn every_value_is_bound_never_formatted() {
        let filter = AuditFilter {
            streams: vec!["run".into(), "user-x'; DROP TABLE events; --".into()],
            types: vec!["run_queued".into()],
            actors: vec!["admin".into()],
            correlations: vec![uuid::Uuid::nil()],
            since: Some(Utc::now()),
            until: Some(Utc::now()),
            from: Some(1),
            to: Some(9),
        };
        let mut query = QueryBuilder::new("SELECT 1 FROM events WHERE position > ");
        query.push_bind(0_i64);
        filter.push_conditions(&mut query);
        let sql = query.sql();
        assert!(!sql.contains("DROP") && !sql.contains("admin"), "{sql}");
        assert_eq!(sql.matches('$').count(), 10, "{sql}");
    }
}
