//! A lab for the query tests: a database, a handler and a projector of the test's own, and a
//! way to send a command and wait until the read models include it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use runledger_readmodel::Freshness;
use runledger_test_support::{RunningHandler, RunningProjector, TestLab};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a test waits for the projector.
pub const WAIT: Duration = Duration::from_secs(30);

/// One test's services.
pub struct Lab {
    pub lab: TestLab,
    handler: RunningHandler,
    projector: RunningProjector,
    shutdown: CancellationToken,
    pub freshness: Freshness,
}

impl Lab {
    pub async fn start() -> Lab {
        let lab = TestLab::create().await;
        let handler = lab.start_handler().await;
        let projector = lab.start_projector(1000).await;
        let shutdown = CancellationToken::new();
        let freshness = Freshness::start(lab.db.pool.clone(), shutdown.clone())
            .await
            .unwrap();
        Lab {
            lab,
            handler,
            projector,
            shutdown,
            freshness,
        }
    }

    pub fn pool(&self) -> &runledger_readmodel::PgPool {
        &self.lab.db.pool
    }

    /// Sends a command that must be accepted; returns once the read models include it.
    pub async fn send(&self, kind: &str, actor: &str, payload: Value) -> i64 {
        let outcome = self.lab.client().send(kind, actor, payload).await;
        assert!(outcome.accepted, "{kind}: {outcome:?}");
        let position = outcome.events.iter().map(|e| e.position).max().unwrap();
        self.freshness.wait_for(position, WAIT).await.unwrap();
        position
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handler.stop().await;
        self.projector.stop().await;
        self.lab.cleanup().await;
    }
}
