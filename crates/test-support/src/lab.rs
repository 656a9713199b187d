//! A whole test lab: database, NATS namespace, and handlers running in-process.

use crate::client::CommandClient;
use crate::db::TestDb;
use crate::nats::TestNats;
use runledger_handler::{Handler, HandlerSettings, HandlerStats};
use runledger_projections::{ProjectorSettings, ProjectorStats};
use runledger_secrets::{Keyring, SecretKey};
use runledger_store::EventStore;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One test's private services.
#[derive(Debug)]
pub struct TestLab {
    /// The test's database.
    pub db: TestDb,
    /// The test's NATS namespace.
    pub nats: TestNats,
    /// The event log.
    pub store: EventStore,
    /// The credential keyring handlers use.
    pub keyring: Keyring,
}

/// A handler started by [`TestLab::start_handler`].
#[derive(Debug)]
pub struct RunningHandler {
    /// Cancel to stop it.
    pub shutdown: CancellationToken,
    /// Its task.
    pub task: JoinHandle<Result<(), runledger_handler::HandlerError>>,
    /// Its counters.
    pub stats: Arc<HandlerStats>,
}

impl RunningHandler {
    /// Stops it gracefully and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("handler task").expect("handler ran");
    }

    /// Kills it without any grace: in-flight work is lost, as in a crash.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// A projector started by [`TestLab::start_projector`].
#[derive(Debug)]
pub struct RunningProjector {
    /// Cancel to stop it.
    pub shutdown: CancellationToken,
    /// Its task.
    pub task: JoinHandle<Result<(), runledger_projections::ProjectionError>>,
    /// Its counters.
    pub stats: Arc<ProjectorStats>,
}

impl RunningProjector {
    /// Stops it gracefully and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("projector task")
            .expect("projector ran");
    }

    /// Kills it without any grace, as in a crash: an open transaction is rolled back.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

impl TestLab {
    /// Creates a database and a NATS namespace on the shared servers.
    pub async fn create() -> Self {
        Self::assemble(TestDb::create().await, TestNats::create().await).await
    }

    /// Creates a database and a NATS namespace on servers of the test's own: the Postgres
    /// whose superuser connects with `admin_url` and the NATS server at `nats_url`.
    pub async fn create_on(admin_url: &str, nats_url: &str) -> Self {
        let db = TestDb::create_in(admin_url).await;
        Self::assemble(db, TestNats::create_at(nats_url).await).await
    }

    async fn assemble(db: TestDb, nats: TestNats) -> Self {
        crate::init_tracing();
        runledger_bus::ensure_streams(&nats.jetstream(), &nats.names)
            .await
            .expect("create the test's streams");
        let store = EventStore::new(db.pool.clone());
        let key = SecretKey::from_bytes(&[42; 32]).expect("key");
        Self {
            db,
            nats,
            store,
            keyring: Keyring::new(key, Vec::new()),
        }
    }

    /// A handler with its own database pool and NATS connection, as a separate process would have.
    pub async fn handler(&self, max_batch: usize) -> Handler {
        self.handler_with_lease(max_batch, std::time::Duration::from_secs(30))
            .await
    }

    /// A handler whose executors' leases last `executor_lease`.
    pub async fn handler_with_lease(
        &self,
        max_batch: usize,
        executor_lease: std::time::Duration,
    ) -> Handler {
        let pool = runledger_store::connect(&self.db.url, 8)
            .await
            .expect("pool");
        let nats = runledger_bus::connect(&self.nats.url, "test-handler")
            .await
            .expect("nats");
        Handler {
            store: EventStore::new(pool),
            nats,
            names: self.nats.names.clone(),
            keyring: self.keyring.clone(),
            // Short, so a test that kills a handler sees redelivery quickly.
            settings: HandlerSettings {
                max_batch,
                ack_wait: std::time::Duration::from_secs(3),
                executor_lease,
            },
            stats: Default::default(),
        }
    }

    /// Starts a handler in the background.
    pub async fn start_handler(&self) -> RunningHandler {
        self.start_handler_with(1000).await
    }

    /// Starts a handler with a given group-commit size.
    pub async fn start_handler_with(&self, max_batch: usize) -> RunningHandler {
        self.spawn_handler(self.handler(max_batch).await)
    }

    /// Starts a handler whose executors' leases last `executor_lease`.
    pub async fn start_handler_with_lease(
        &self,
        executor_lease: std::time::Duration,
    ) -> RunningHandler {
        self.spawn_handler(self.handler_with_lease(1000, executor_lease).await)
    }

    fn spawn_handler(&self, handler: Handler) -> RunningHandler {
        let stats = handler.stats.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runledger_handler::run(handler, shutdown.clone()));
        RunningHandler {
            shutdown,
            task,
            stats,
        }
    }

    /// Starts a projector with its own pool, applying at most `batch` events per transaction.
    pub async fn start_projector(&self, batch: i64) -> RunningProjector {
        let pool = runledger_store::connect(&self.db.url, 4)
            .await
            .expect("pool");
        let settings = ProjectorSettings {
            batch,
            idle_poll: std::time::Duration::from_millis(10),
            leader_poll: std::time::Duration::from_millis(200),
        };
        let stats = Arc::new(ProjectorStats::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runledger_projections::run(
            pool,
            settings,
            stats.clone(),
            shutdown.clone(),
        ));
        RunningProjector {
            shutdown,
            task,
            stats,
        }
    }

    /// A command client in this lab's namespace.
    pub fn client(&self) -> CommandClient {
        CommandClient::new(&self.nats)
    }

    /// Drops the database and the streams.
    pub async fn cleanup(self) {
        self.nats.cleanup().await;
        self.db.cleanup().await;
    }
}
