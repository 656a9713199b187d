//! `gateway.login_attempts`: failed logins, limited per username and client address and shared
//! by every gateway process.
//!
//! Every attempt first reserves itself: one upsert counts it (as a failure until it succeeds)
//! and, in the same statement, answers whether it may go on, so a burst of concurrent attempts
//! cannot all pass a check before any of them is recorded. The first
//! [`LoginLimits::free_per_user`] failures of a username from one address cost nothing; each
//! further one doubles the wait before the next attempt, up to [`LoginLimits::max_delay`]. A
//! success forgets that username's failures from that address. The key is (username, address),
//! so an attacker's failures delay only the attacker: the user still logs in from their own
//! address. A second row per address across all usernames ([`LoginLimits::free_per_client`])
//! slows password spraying. Rows idle for [`RETENTION`] are forgotten and deleted, so neither
//! memory nor the table grows without bound; nothing is kept in memory.

use crate::error::ReadModelError;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// How many failures cost nothing, and how the wait grows after them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginLimits {
    /// Failures of one username from one address before any wait.
    pub free_per_user: i32,
    /// Failures from one address, across usernames, before any wait.
    pub free_per_client: i32,
    /// The wait after the first failure beyond the free ones; it doubles with each further one.
    pub base_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
}

impl Default for LoginLimits {
    /// 3 free failures per username and address, 30 per address; then 1 s, 2 s, 4 s ... 60 s.
    fn default() -> Self {
        Self {
            free_per_user: 3,
            free_per_client: 30,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}
/// Failures idle this long are forgotten.
pub const RETENTION: Duration = Duration::from_secs(15 * 60);

/// The key of the per-address row; per-user keys start with `u:`, so no username can be it.
const ANY_USER: &str = "";

/// The row key of `username`: prefixed, and cut short so that a huge name is no huge key.
fn user_key(username: &str) -> String {
    let short: String = username.chars().take(128).collect();
    format!("u:{short}")
}

/// One upsert for both rows; `$3` marks the attempt, so `last_allowed = $3` afterwards means
/// it was allowed (a blocked row keeps its earlier mark).
const RESERVE: &str = "\
    INSERT INTO gateway.login_attempts AS a \
        (username, client, failures, blocked_until, last_allowed, updated_at) \
    SELECT k.username, $2, 1, \
        now() + gateway.login_delay(1, CASE WHEN k.username = $7 THEN $6 ELSE $5 END, $9, $8), \
        $3, now() \
    FROM unnest(ARRAY[$1, $7]::text[]) AS k(username) \
    ON CONFLICT (username, client) DO UPDATE SET \
        failures = CASE WHEN a.blocked_until > now() THEN a.failures \
                        WHEN a.updated_at < now() - make_interval(secs => $4) THEN 1 \
                        ELSE a.failures + 1 END, \
        blocked_until = CASE WHEN a.blocked_until > now() THEN a.blocked_until \
            ELSE now() + gateway.login_delay( \
                CASE WHEN a.updated_at < now() - make_interval(secs => $4) THEN 1 \
                     ELSE a.failures + 1 END, \
                CASE WHEN a.username = $7 THEN $6 ELSE $5 END, $9, $8) END, \
        last_allowed = CASE WHEN a.blocked_until > now() THEN a.last_allowed ELSE $3 END, \
        updated_at = CASE WHEN a.blocked_until > now() THEN a.updated_at ELSE now() END \
    RETURNING last_allowed = $3 AS allowed, \
        ceil(greatest(0, extract(epoch FROM blocked_until - now())))::bigint AS wait";

/// Reserves one attempt of `username` from `client`: `None` when it may go on, else the
/// seconds (at least 1) it must wait.
pub async fn reserve_attempt(
    pool: &PgPool,
    limits: &LoginLimits,
    username: &str,
    client: &str,
) -> Result<Option<u64>, ReadModelError> {
    let rows: Vec<(bool, i64)> = sqlx::query_as(RESERVE)
        .bind(user_key(username))
        .bind(client)
        .bind(Uuid::now_v7())
        .bind(RETENTION.as_secs_f64())
        .bind(limits.free_per_user)
        .bind(limits.free_per_client)
        .bind(ANY_USER)
        .bind(limits.max_delay.as_secs_f64())
        .bind(limits.base_delay.as_secs_f64())
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .filter(|(allowed, _)| !allowed)
        .map(|(_, wait)| *wait)
        .max()
        .map(|wait| u64::try_from(wait).unwrap_or(0).max(1)))
}

/// The attempt succeeded: forgets `username`'s failures from `client`, and takes the attempt
/// back from the address's count. Two statements, each locking one row, in the order
/// [`reserve_attempt`] locks them, so that the two cannot deadlock.
pub async fn attempt_succeeded(
    pool: &PgPool,
    username: &str,
    client: &str,
) -> Result<(), ReadModelError> {
    sqlx::query("DELETE FROM gateway.login_attempts WHERE username = $1 AND client = $2")
        .bind(user_key(username))
        .bind(client)
        .execute(pool)
        .await?;
    sqlx::query(
        "UPDATE gateway.login_attempts SET failures = greatest(failures - 1, 0) \
         WHERE username = $1 AND client = $2",
    )
    .bind(ANY_USER)
    .bind(client)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes the rows idle for longer than [`RETENTION`]; returns how many.
pub async fn prune_attempts(pool: &PgPool) -> Result<u64, ReadModelError> {
    let done = sqlx::query(
        "DELETE FROM gateway.login_attempts WHERE updated_at < now() - make_interval(secs => $1) \
         AND blocked_until < now()",
    )
    .bind(RETENTION.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
