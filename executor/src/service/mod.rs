//! The executor service: follows the log into a [`LabView`](crate::view::LabView), takes
//! `venv_added` and `run_assigned` work from the shared durable consumers, drives each one
//! ([`driver`](crate::driver)) over SSH, the local transport or Jenkins, and reports back through
//! [`NatsReporter`] as the actor `executor:<name>`. A third consumer, of `run_finished`, stops
//! the Jenkins build of a run that ended in error (it may outlive its run otherwise).
//!
//! A run is claimed with `report_run_started`: only an accepted outcome carrying a
//! `run_started` event makes it this executor's; otherwise the item is acked and skipped. While
//! a run is driven its item is kept alive (`in_progress`) and the view is watched for
//! `run_cancel_requested`. Items are acked once their final report is accepted.

mod ended;
mod jenkins;
mod lease;
mod machines;
mod pinning;
mod reporter;
mod run;
mod venv;

pub use pinning::{PinRefused, PinThroughHandler};
pub use reporter::{NatsReporter, ReporterError};

use std::sync::Arc;
use std::time::Duration;

use runledger_bus::{BusError, BusNames};
use runledger_secrets::Keyring;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::feed::{self, FeedError, ViewHandle, WorkConfig, WorkQueue};
use crate::ssh::SshOptions;
use lease::HeldRuns;
use machines::Machines;

/// How an executor process runs.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// The executor's name; it reports as the actor `executor:<name>`.
    pub name: String,
    /// NATS subject and stream names.
    pub names: BusNames,
    /// Opens machine credentials.
    pub keyring: Keyring,
    /// Most runs driven at once.
    pub max_concurrent_runs: usize,
    /// Most venvs provisioned at once.
    pub max_concurrent_provisions: usize,
    /// The work consumers' settings.
    pub work: WorkConfig,
    /// SSH connection bounds and keepalives.
    pub ssh: SshOptions,
    /// How long a report waits for its outcome before it is published again.
    pub report_timeout: Duration,
    /// How many times a report is published before it is given up on.
    pub report_attempts: u32,
    /// How long in-flight work may go on after shutdown before it is abandoned (its items are
    /// then delivered again).
    pub shutdown_grace: Duration,
    /// How long a venv's provisioning (venv creation and pip installs) may take before it is
    /// abandoned and reported failed.
    pub provisioning_timeout: Duration,
    /// How often the executor sends `executor_heartbeat` naming the runs it drives; keep it
    /// well under the handler's executor lease (default: 5 s against a 30 s lease).
    pub heartbeat_every: Duration,
    /// How often a Jenkins server is asked about a build's queue item, console and result.
    pub jenkins_poll: Duration,
    /// Whether work on `local` machines runs, as child processes of this executor on its own
    /// host; off unless the operator allows it: such work runs where the credential key is.
    pub allow_local: bool,
}

impl ExecutorSettings {
    /// Defaults for the executor `name`: 16 runs and 4 provisionings at once.
    pub fn new(name: impl Into<String>, names: BusNames, keyring: Keyring) -> Self {
        Self {
            name: name.into(),
            names,
            keyring,
            max_concurrent_runs: 16,
            max_concurrent_provisions: 4,
            work: WorkConfig::default(),
            ssh: SshOptions::default(),
            report_timeout: Duration::from_secs(10),
            report_attempts: 3,
            shutdown_grace: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(5),
            provisioning_timeout: Duration::from_secs(30 * 60),
            jenkins_poll: Duration::from_secs(1),
            allow_local: false,
        }
    }
}

/// Why the executor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The streams could not be set up.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The events follower or a work consumer failed.
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// What every work item's handler shares.
pub(crate) struct Worker {
    /// The executor's name.
    pub(crate) name: String,
    /// The runs this process drives.
    pub(crate) held: HeldRuns,
    pub(crate) view: ViewHandle,
    pub(crate) reporter: NatsReporter,
    pub(crate) machines: Machines,
    pub(crate) keep_alive_every: Duration,
    pub(crate) provisioning_timeout: Duration,
    /// Opens Jenkins API tokens.
    pub(crate) keyring: Keyring,
    pub(crate) jenkins_poll: Duration,
}

/// Runs the executor until `shutdown` is cancelled (then waits up to `shutdown_grace` for work
/// in flight) or its feed fails.
#[tracing::instrument(skip_all, fields(executor = %settings.name))]
pub async fn run(
    nats: async_nats::Client,
    settings: ExecutorSettings,
    shutdown: CancellationToken,
) -> Result<(), ExecutorError> {
    let js = runledger_bus::jetstream(nats.clone());
    runledger_bus::ensure_streams(&js, &settings.names).await?;
    let (writer, view) = feed::shared_view();
    // The events follower and the heartbeat outlive `shutdown` until the runs in flight are
    // done: a run being finished still needs to see cancellations and to hold its lease.
    let drained = CancellationToken::new();
    let follower = {
        let (js, names, token) = (js.clone(), settings.names.clone(), drained.clone());
        // Aborted with this future if it is dropped (its caller gave up on it): no follower
        // or heartbeat outlives the executor it belongs to.
        AbortOnDropHandle::new(tokio::spawn(async move {
            feed::follow_events(&js, &names, writer, token).await
        }))
    };
    let queues = feed::work_consumers(&js, &settings.names, settings.work).await?;
    let reporter = NatsReporter::new(
        nats,
        settings.names.clone(),
        &settings.name,
        settings.report_timeout,
        settings.report_attempts,
    );
    let worker = Arc::new(Worker {
        name: settings.name.clone(),
        held: HeldRuns::default(),
        view,
        reporter,
        machines: Machines::new(settings.keyring.clone(), settings.ssh, settings.allow_local),
        keep_alive_every: (settings.work.ack_wait / 3).max(Duration::from_millis(100)),
        provisioning_timeout: settings.provisioning_timeout,
        keyring: settings.keyring.clone(),
        jenkins_poll: settings.jenkins_poll,
    });
    tracing::info!("executor started");
    let lease = AbortOnDropHandle::new(tokio::spawn(lease::keep_lease(
        Arc::clone(&worker),
        settings.heartbeat_every,
        drained.clone(),
    )));
    let mut tasks = JoinSet::new();
    let taken = tokio::select! {
        taken = take(&queues.runs, &worker, settings.max_concurrent_runs, &shutdown, &mut tasks, Kind::Run) => taken,
        taken = take_apart(&queues.venvs, &worker, settings.max_concurrent_provisions, &shutdown, Kind::Venv) => taken,
        taken = take_apart(&queues.ends, &worker, settings.max_concurrent_provisions, &shutdown, Kind::Ended) => taken,
    };
    shutdown.cancel();
    let drained_in_time = tokio::time::timeout(settings.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    });
    if drained_in_time.await.is_err() {
        tracing::warn!("work still in flight after the shutdown grace; abandoning it");
        tasks.abort_all();
    }
    drained.cancel();
    let _ = lease.await;
    let _ = follower.await;
    tracing::info!("executor stopped");
    taken
}

#[derive(Clone, Copy)]
enum Kind {
    Run,
    Venv,
    Ended,
}

/// Provisioning and clean-up work, each in its own task set so the run loop's set is not
/// borrowed twice.
async fn take_apart(
    queue: &WorkQueue,
    worker: &Arc<Worker>,
    limit: usize,
    shutdown: &CancellationToken,
    kind: Kind,
) -> Result<(), ExecutorError> {
    let mut tasks = JoinSet::new();
    let taken = take(queue, worker, limit, shutdown, &mut tasks, kind).await;
    while tasks.join_next().await.is_some() {}
    taken
}

/// Takes items from `queue` while fewer than `limit` are in flight, each in its own task,
/// until `shutdown`.
async fn take(
    queue: &WorkQueue,
    worker: &Arc<Worker>,
    limit: usize,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
    kind: Kind,
) -> Result<(), ExecutorError> {
    let slots = Arc::new(Semaphore::new(limit.max(1)));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            permit = Arc::clone(&slots).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return Ok(()) };
        while tasks.try_join_next().is_some() {}
        let Some(item) = queue.next_ready(&worker.view, shutdown).await? else {
            return Ok(());
        };
        let worker = Arc::clone(worker);
        tasks.spawn(async move {
            match kind {
                Kind::Run => run::handle(&worker, item).await,
                Kind::Venv => venv::handle(&worker, item).await,
                Kind::Ended => ended::handle(&worker, item).await,
            }
            drop(permit);
        });
    }
}
