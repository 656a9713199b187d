//! A test case's trend: its finished runs per hour, day or week, from `rm_runs.runs`.

use super::TestsQueryError;
use crate::error::ReadModelError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The width of a trend's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// An hour.
    Hour,
    /// A day (UTC).
    Day,
    /// A week (from Monday, UTC).
    Week,
}

impl Bucket {
    /// Parses `hour`, `day` or `week` (default `day`).
    pub fn parse(raw: Option<&str>) -> Result<Self, TestsQueryError> {
        match raw.unwrap_or("day") {
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            other => Err(TestsQueryError::UnknownBucket(other.to_owned())),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }
}

/// The runs of one bucket.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    /// Where the bucket starts.
    pub bucket: DateTime<Utc>,
    /// Runs finished in it.
    pub runs: i64,
    /// Of which passed.
    pub passed: i64,
    /// Of which failed.
    pub failed: i64,
    /// Of which ended `error`.
    pub error: i64,
    /// `passed / runs`.
    pub pass_rate: f64,
    /// Median run duration (runs that started).
    pub duration_p50_ms: Option<i64>,
    /// 90th percentile of the run durations.
    pub duration_p90_ms: Option<i64>,
}

/// Most buckets one trend answers (the newest).
pub const MAX_BUCKETS: i64 = 1000;

/// The runs of `test_case_id` finished in `[since, until)`, per bucket, oldest first; at most
/// the newest [`MAX_BUCKETS`].
pub async fn trend(
    pool: &PgPool,
    test_case_id: Uuid,
    bucket: Bucket,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<TrendPoint>, ReadModelError> {
    let mut points: Vec<TrendPoint> = sqlx::query_as(
        "SELECT date_trunc($2, finished_at, 'UTC') AS bucket, count(*) AS runs, \
         count(*) FILTER (WHERE status = 'passed') AS passed, \
         count(*) FILTER (WHERE status = 'failed') AS failed, \
         count(*) FILTER (WHERE status = 'error') AS error, \
         (count(*) FILTER (WHERE status = 'passed'))::float8 / count(*) AS pass_rate, \
         percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS duration_p50_ms, \
         percentile_disc(0.9) WITHIN GROUP (ORDER BY duration_ms) AS duration_p90_ms \
         FROM rm_runs.runs WHERE test_case_id = $1 AND finished_at IS NOT NULL \
         AND ($3::timestamptz IS NULL OR finished_at >= $3) \
         AND ($4::timestamptz IS NULL OR finished_at < $4) \
         GROUP BY 1 ORDER BY 1 DESC LIMIT $5",
    )
    .bind(test_case_id)
    .bind(bucket.unit())
    .bind(since)
    .bind(until)
    .bind(MAX_BUCKETS)
    .fetch_all(pool)
    .await?;
    points.reverse();
    Ok(points)
}
