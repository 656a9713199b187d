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

/// A run's output as text from a byte offset, a page of chunks at a time: for serving a log of
/// any size without holding it whole.
#[derive(Debug, Clone)]
pub struct OutputText {
    pool: PgPool,
    run_id: Uuid,
    next: i64,
    page: i64,
    done: bool,
}

impl OutputText {
    /// Reads `run_id`'s output from byte `from`, `page` chunks per read.
    pub fn new(pool: PgPool, run_id: Uuid, from: i64, page: i64) -> Self {
        Self {
            pool,
            run_id,
            next: from,
            page: page.max(1),
            done: false,
        }
    }

    /// The next page's text; `None` once the output recorded so far has been read.
    pub async fn next_page(&mut self) -> Result<Option<String>, ReadModelError> {
        if self.done {
            return Ok(None);
        }
        let chunks = run_output(&self.pool, self.run_id, self.next, self.page).await?;
        self.done = (chunks.len() as i64) < self.page;
        if chunks.is_empty() {
            return Ok(None);
        }
        let before = self.next;
        let mut text = String::new();
        for chunk in &chunks {
            // A `from` inside a chunk starts there; inside a multi-byte character, at the next chunk.
            let skip = usize::try_from(self.next - chunk.byte_offset).unwrap_or(0);
            text.push_str(chunk.text.get(skip..).unwrap_or(""));
            self.next = chunk.byte_offset + chunk.text.len() as i64;
        }
        // Chunks always end past `next`; should one not, stop rather than read it again.
        self.done |= self.next <= before;
        Ok(Some(text))
    }
}
