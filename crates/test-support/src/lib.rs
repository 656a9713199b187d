//! Test fixtures against the real services: a fresh Postgres database per test, a private NATS
//! prefix (subjects and streams) per test, an in-process handler, a command client, and
//! `eventually` for waiting without fixed sleeps.
//!
//! Service addresses come from `RUNLEDGER_TEST_DATABASE_URL` (an admin connection, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `RUNLEDGER_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`).
#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod client;
mod db;
mod jenkins;
mod lab;
mod nats;
mod nats_server;
mod postgres_server;
mod process;
mod roles;
mod spy;
mod sshd;
mod test_results;

pub use binary::runledger_binary;
pub use client::CommandClient;
pub use db::TestDb;
pub use jenkins::{FakeJenkins, FakeJob, JENKINS_TOKEN, JENKINS_USER};
pub use lab::{RunningHandler, RunningProjector, TestLab};
pub use nats::TestNats;
pub use nats_server::TestNatsServer;
pub use postgres_server::TestPostgres;
pub use process::{TEST_SECRET_KEY, free_port, runledger_command, wait_until_healthy};
pub use roles::TestRoles;
pub use spy::{HttpSpy, SpiedRequest};
/// sqlx, for tests that look at tables directly without depending on it themselves (the
/// gateway reads only through runledger-readmodel).
pub use sqlx;
pub use sshd::{TEST_USER, TestSshd, auth_lines};
pub use test_results::{
    WOBBLY_MESSAGE, lab_for_reported_runs, reported_run, suite_history, wobbly_suite,
};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `probe` until it yields `Some`, or fails the test after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// Installs a test log subscriber once (`RUST_LOG` filters; silent by default).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
