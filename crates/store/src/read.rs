//! Reading the log and the record of handled commands.

use crate::EventStore;
use crate::error::StoreError;
use runledger_types::{CommandId, EventRecord, Outcome, RawEventRecord, RunId, StreamId};
use serde_json::value::RawValue;
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::collections::HashMap;
use uuid::Uuid;

/// The columns of an [`EventRecord`] but `data`, for `concat!` into static SQL.
macro_rules! event_columns {
    () => {
        "position, event_id, stream_id, stream_version, type, schema_version, recorded_at, actor, \
         command_id, correlation_id, causation_id"
    };
}
pub(crate) use event_columns;

fn record_from_row<D>(row: &PgRow, data: D) -> Result<EventRecord<D>, sqlx::Error> {
    Ok(EventRecord {
        position: row.try_get("position")?,
        event_id: row.try_get::<Uuid, _>("event_id")?.into(),
        stream_id: StreamId::from_stored(row.try_get("stream_id")?),
        stream_version: row.try_get("stream_version")?,
        event_type: row.try_get("type")?,
        schema_version: row.try_get("schema_version")?,
        recorded_at: row.try_get("recorded_at")?,
        actor: row.try_get("actor")?,
        command_id: row.try_get::<Uuid, _>("command_id")?.into(),
        correlation_id: row.try_get("correlation_id")?,
        causation_id: row.try_get("causation_id")?,
        data,
    })
}

pub(crate) fn parsed_record(row: &PgRow) -> Result<EventRecord, sqlx::Error> {
    record_from_row(row, row.try_get("data")?)
}

fn raw_record(row: &PgRow) -> Result<RawEventRecord, StoreError> {
    let text: String = row.try_get("data")?;
    let data = RawValue::from_string(text).map_err(|source| StoreError::Json {
        what: "event data is not JSON".to_owned(),
        source,
    })?;
    Ok(record_from_row(row, data)?)
}

impl EventStore {
    /// The position of the last committed event (0 for an empty log).
    pub async fn head(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT position FROM log_head")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Up to `limit` events after `after`, in position order. Gap-safe: see the crate docs.
    pub async fn read_after(&self, after: i64, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            event_columns!(),
            ", data FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        );
        self.page(SQL, after, limit, |row| Ok(parsed_record(row)?))
            .await
    }

    /// Like [`EventStore::read_after`], with `data` left as JSON text: for passing events on.
    pub async fn read_after_raw(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RawEventRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            event_columns!(),
            ", data::text AS data FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        );
        self.page(SQL, after, limit, raw_record).await
    }

    async fn page<T>(
        &self,
        sql: &'static str,
        after: i64,
        limit: i64,
        decode: impl Fn(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// Every event of one stream, in version order.
    pub async fn read_stream(&self, stream_id: &StreamId) -> Result<Vec<EventRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            event_columns!(),
            ", data FROM events WHERE stream_id = $1 ORDER BY stream_version"
        );
        let rows = sqlx::query(SQL)
            .bind(stream_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(parsed_record).collect::<Result<_, _>>()?)
    }

    /// The position of a stream's last event (`None` for an empty stream): how far a read
    /// model must have come to include everything the stream says.
    pub async fn stream_head(&self, stream_id: &str) -> Result<Option<i64>, StoreError> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT max(position) FROM events WHERE stream_id = $1")
                .bind(stream_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(head)
    }

    /// The latest event of `event_type` in one stream, if any.
    pub async fn last_of_type(
        &self,
        stream_id: &StreamId,
        event_type: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            event_columns!(),
            ", data FROM events WHERE stream_id = $1 AND type = $2 \
             ORDER BY stream_version DESC LIMIT 1"
        );
        let row = sqlx::query(SQL)
            .bind(stream_id.as_str())
            .bind(event_type)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(parsed_record).transpose()?)
    }

    /// The per-test results of a run's last finished attempt: its `run_tests_reported` parts in
    /// order, then the `tests` of its `run_finished`. `None` until the run has finished.
    pub async fn run_tests(
        &self,
        run_id: RunId,
    ) -> Result<Option<Vec<serde_json::Value>>, StoreError> {
        let rows: Vec<(String, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT type, data -> 'tests' FROM events WHERE stream_id = $1 \
             AND type IN ('run_assigned', 'run_tests_reported', 'run_finished') \
             ORDER BY stream_version",
        )
        .bind(StreamId::run(run_id).as_str())
        .fetch_all(&self.pool)
        .await?;
        let (mut attempt, mut finished) = (Vec::new(), None);
        for (event_type, tests) in rows {
            if event_type == "run_assigned" {
                attempt.clear();
                continue;
            }
            if let Some(serde_json::Value::Array(tests)) = tests {
                attempt.extend(tests);
            }
            if event_type == "run_finished" {
                finished = Some(std::mem::take(&mut attempt));
            }
        }
        Ok(finished)
    }

    /// Up to `limit` of a run's `run_output` events numbered after `after_seq`, and its
    /// `run_finished` if it has one and the page reaches it, in order: what a reader following
    /// the run's output has not seen yet. Fewer than `limit` means there is no more for now.
    pub async fn run_output_after(
        &self,
        run_id: RunId,
        after_seq: u64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            event_columns!(),
            ", data FROM events WHERE stream_id = $1 AND (type = 'run_finished' \
             OR (type = 'run_output' AND (data->>'seq')::bigint > $2)) ORDER BY stream_version \
             LIMIT $3"
        );
        let rows = sqlx::query(SQL)
            .bind(StreamId::run(run_id).as_str())
            .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(parsed_record).collect::<Result<_, _>>()?)
    }

    /// The recorded outcomes of those of `ids` that were already handled.
    pub async fn outcomes(
        &self,
        ids: &[CommandId],
    ) -> Result<HashMap<CommandId, Outcome>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let raw: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let rows: Vec<(Uuid, serde_json::Value)> =
            sqlx::query_as("SELECT command_id, outcome FROM commands WHERE command_id = ANY($1)")
                .bind(&raw)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, outcome)| {
                serde_json::from_value(outcome)
                    .map(|outcome| (CommandId(id), outcome))
                    .map_err(|source| StoreError::Json {
                        what: format!("outcome of {id}"),
                        source,
                    })
            })
            .collect()
    }
}
