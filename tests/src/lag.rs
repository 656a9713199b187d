//! Projection lag, as a reader of the read models sees it: how old the oldest committed event is
//! that the read models do not include yet (0 when they include every committed one), sampled
//! at a fixed interval while a benchmark runs.

use anyhow::Context;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// The log head, and the age in ms (by Postgres' clock) of the event after `$1`, if committed.
const LAG_SQL: &str = "SELECT (SELECT position FROM log_head), \
    (SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8 * 1000 \
     FROM events WHERE position = $1 + 1)";

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Age of the oldest unprojected event in ms; 0 when there is none.
    pub age_ms: f64,
    /// Events committed and not yet projected (log head − projected position).
    pub behind: i64,
}

/// Reads the lag once.
pub async fn sample(pool: &PgPool) -> anyhow::Result<Sample> {
    let projected = runledger_readmodel::projected_position(pool).await?;
    let (head, age_ms): (i64, Option<f64>) = sqlx::query_as(LAG_SQL)
        .bind(projected)
        .fetch_one(pool)
        .await?;
    Ok(Sample {
        age_ms: age_ms.unwrap_or(0.0).max(0.0),
        behind: (head - projected).max(0),
    })
}

/// Samples in the background until stopped.
#[derive(Debug)]
pub struct LagSampler {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<Vec<Sample>>>,
}

impl LagSampler {
    /// Starts sampling every `every`.
    pub fn start(pool: PgPool, every: Duration) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    () = token.cancelled() => return Ok(samples),
                    _ = ticker.tick() => samples.push(sample(&pool).await?),
                }
            }
        });
        Self { stop, task }
    }

    /// Stops sampling and returns the samples.
    pub async fn stop(self) -> anyhow::Result<Vec<Sample>> {
        self.stop.cancel();
        self.task.await.context("lag sampler")?
    }
}

/// Percentiles of a run's samples.
#[derive(Debug, Clone, Copy)]
pub struct LagSummary {
    /// Samples taken.
    pub samples: usize,
    /// Median age, ms.
    pub p50_ms: f64,
    /// 99th percentile age, ms.
    pub p99_ms: f64,
    /// Largest age, ms.
    pub max_ms: f64,
    /// Most events behind at once.
    pub max_behind: i64,
}

impl LagSummary {
    /// Summarises `samples` (nearest-rank percentiles).
    pub fn of(samples: &[Sample]) -> Self {
        let mut ages: Vec<f64> = samples.iter().map(|s| s.age_ms).collect();
        ages.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = ((q * ages.len() as f64).ceil() as usize).saturating_sub(1);
            ages.get(index).copied().unwrap_or(0.0)
        };
        Self {
            samples: ages.len(),
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: ages.last().copied().unwrap_or(0.0),
            max_behind: samples.iter().map(|s| s.behind).max().unwrap_or(0),
        }
    }
}

/// Waits until the read models include every committed event; returns how long that took.
pub async fn wait_caught_up(pool: &PgPool, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if sample(pool).await?.behind == 0 {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "read models still behind after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Sample> = (1..=100)
            .map(|i| Sample {
                age_ms: f64::from(i),
                behind: i64::from(i),
            })
            .collect();
        let summary = LagSummary::of(&samples);
        assert_eq!(
            (summary.p50_ms, summary.p99_ms, summary.max_ms),
            (50.0, 99.0, 100.0)
        );
        assert_eq!(summary.max_behind, 100);
        assert_eq!(LagSummary::of(&[]).p99_ms, 0.0);
    }
}
