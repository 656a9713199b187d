//! A run's output, whole or from a byte offset, read through the `rm_runs.run_output` index from
//! the log's `run_output` events.

use crate::error::ReadModelError;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// One chunk of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutputChunk {
    /// The executor's sequence number, from 1.
    pub seq: i64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Where the chunk starts in the run's whole output, in bytes.
    pub byte_offset: i64,
    /// The text.
    pub text: String,
}

const OUTPUT_SQL: &str = "
SELECT o.seq, o.stream, o.byte_offset, e.data->>'text' AS text
FROM rm_runs.run_output o
JOIN events e ON e.position = o.position
WHERE o.run_id = $1 AND o.byte_offset + o.bytes > $2
ORDER BY o.seq
LIMIT $3";

/// Up to `limit` chunks of `run_id`'s output, in order, from the chunk holding byte `from` on
/// (the first chunk may start before `from`: skip `from - byte_offset` bytes of it).
pub async fn run_output(
    pool: &PgPool,
    run_id: Uuid,
    from: i64,
    limit: i64,
) -> Result<Vec<OutputChunk>, ReadModelError> {
    Ok(sqlx::query_as(OUTPUT_SQL)
        .bind(run_id)
        .bind(from)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}
