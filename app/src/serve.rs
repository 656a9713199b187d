//! `runledger serve` and `runledger migrate`.

use crate::cli::{Component, ServeArgs};
use crate::database::DbUser;
use crate::settings::Settings;
use anyhow::Context;
use runledger_executor::ExecutorSettings;
use runledger_gateway::GatewaySettings;
use runledger_handler::{Handler, HandlerSettings};
use runledger_projections::ProjectorSettings;
use runledger_secrets::Keyring;
use runledger_store::EventStore;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// `runledger migrate`: applies the migrations as the owner (DATABASE_URL).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = settings.database.connect(DbUser::Owner, 2).await?;
    runledger_store::migrate(&pool)
        .await
        .context("applying migrations (as the owner of the log's tables)")?;
    pool.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// `runledger serve`: runs the chosen components until SIGINT or SIGTERM.
///
/// Before any component starts, the prefix's NATS streams are checked against the log
/// ([`check_bus`]): a process that would act on them refuses streams of another log.
/// Shutdown comes in two stages: the executor stops taking work and finishes (or hands back)
/// its runs first, while this process's handler can still record their ends; then the other
/// components stop. A component that fails stops everything at once.
pub async fn serve(settings: &Settings, args: &ServeArgs) -> anyhow::Result<()> {
    check_bus(settings, &args.components).await?;
    let wedges = runledger_bus::Wedges::default();
    let signal = CancellationToken::new();
    tokio::spawn(stop_on_signal(signal.clone()));
    let executor_done = CancellationToken::new();
    if !args.components.contains(&Component::Executor) {
        executor_done.cancel();
    }
    let shutdown = CancellationToken::new();
    {
        let (signal, executor_done, shutdown) =
            (signal.clone(), executor_done.clone(), shutdown.clone());
        tokio::spawn(async move {
            signal.cancelled().await;
            executor_done.cancelled().await;
            shutdown.cancel();
        });
    }
    let mut tasks: JoinSet<(Component, anyhow::Result<()>)> = JoinSet::new();
    // Every component records into this process's recorder from the start.
    runledger_gateway::metrics::handle();
    let metrics_token = runledger_gateway::metrics::MetricsToken::new(
        args.metrics_token.as_ref().map(|t| t.expose()),
    );
    if let Some(addr) = args.metrics_addr {
        let token = shutdown.clone();
        let metrics_token = metrics_token.clone();
        tasks.spawn(async move {
            let result =
                runledger_gateway::metrics::serve_standalone(addr, metrics_token, token).await;
            (Component::Gateway, result.map_err(anyhow::Error::from))
        });
    }
    for component in dedup(&args.components) {
        match component {
            Component::Handler => {
                let handler = handler(settings, args).await?;
                let token = shutdown.clone();
                tasks.spawn(async move {
                    let result = runledger_handler::run(handler, token).await;
                    (component, result.map_err(anyhow::Error::from))
                });
            }
            Component::Projector => {
                let pool = settings
                    .database
                    .service_pool(DbUser::Projector, 16)
                    .await?;
                let token = shutdown.clone();
                tasks.spawn(async move {
                    let result = runledger_projections::run(
                        pool,
                        ProjectorSettings::default(),
                        Default::default(),
                        token,
                    )
                    .await;
                    (component, result.map_err(anyhow::Error::from))
                });
            }
            Component::Executor => {
                let (nats, mut executor) = executor(settings, args).await?;
                executor.wedges = wedges.clone();
                let (token, done) = (signal.clone(), executor_done.clone());
                tasks.spawn(async move {
                    let result = runledger_executor::run(nats, executor, token).await;
                    done.cancel();
                    (component, result.map_err(anyhow::Error::from))
                });
            }
            Component::Gateway => {
                let pool = settings.database.service_pool(DbUser::Gateway, 16).await?;
                let nats = settings.nats("runledger-gateway").await?;
                let addr = settings
                    .http_addr
                    .parse()
                    .with_context(|| format!("RUNLEDGER_HTTP_ADDR {:?}", settings.http_addr))?;
                let names = settings.names()?;
                let token = shutdown.clone();
                let mut gateway = GatewaySettings::new(addr);
                gateway.metrics_token = metrics_token.clone();
                // Development serves plain HTTP: a Secure cookie would never come back.
                gateway.secure_cookie = !args.dev;
                gateway.trust_forwarded_for = args.trust_forwarded_for;
                gateway.wedges = wedges.clone();
                tasks.spawn(async move {
                    let result = runledger_gateway::run(pool, nats, names, gateway, token).await;
                    (component, result.map_err(anyhow::Error::from))
                });
            }
        }
        tracing::info!(?component, "component started");
    }
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let (component, result) = joined.context("a component panicked")?;
        if let Err(err) = result {
            tracing::error!(?component, error = %format!("{err:#}"), "component failed; stopping");
            failure.get_or_insert(err);
            shutdown.cancel();
        }
        signal.cancel();
    }
    failure.map_or(Ok(()), Err)
}

/// Refuses, before anything starts, NATS streams that hold another log's events, when this
/// process would act on them: a handler claims the streams for its log (or refuses them); an
/// executor beside a gateway (which knows the log) refuses a stream another log claimed. A
/// gateway alone only reads: it stays up, and `/readyz` says it is wedged and why.
async fn check_bus(settings: &Settings, components: &[Component]) -> anyhow::Result<()> {
    let names = settings.names()?;
    if components.contains(&Component::Handler) {
        let pool = settings.database.service_pool(DbUser::Handler, 2).await?;
        let js = bus_context(settings).await?;
        let claimed =
            runledger_handler::claim_streams(&EventStore::new(pool.clone()), &js, &names).await;
        pool.close().await;
        return match claimed {
            Ok(claim) => {
                tracing::info!(log = %claim.log, prefix = names.prefix(), "NATS streams claimed for this log");
                Ok(())
            }
            Err(runledger_handler::ClaimError::Refused(refusal)) => Err(refusal.into()),
            Err(err) => Err(anyhow::Error::new(err).context("claiming the NATS streams")),
        };
    }
    if components.contains(&Component::Executor) && components.contains(&Component::Gateway) {
        let pool = settings.database.service_pool(DbUser::Gateway, 2).await?;
        let ours = runledger_readmodel::log_id(&pool).await?;
        pool.close().await;
        let js = bus_context(settings).await?;
        let stream = names.events_stream();
        if let Some(theirs) = runledger_bus::claim::observe(&js, &stream)
            .await?
            .and_then(|state| state.claim)
            .filter(|claim| claim.log != ours)
        {
            return Err(runledger_bus::Refusal::OtherLog {
                stream,
                ours,
                theirs: theirs.log,
            }
            .into());
        }
    }
    Ok(())
}

async fn bus_context(settings: &Settings) -> anyhow::Result<async_nats::jetstream::Context> {
    Ok(runledger_bus::jetstream(
        settings.nats("runledger-check").await?,
    ))
}

fn dedup(components: &[Component]) -> Vec<Component> {
    let mut unique = Vec::new();
    for component in components {
        if !unique.contains(component) {
            unique.push(*component);
        }
    }
    unique
}

async fn handler(settings: &Settings, args: &ServeArgs) -> anyhow::Result<Handler> {
    let keyring = Keyring::new(settings.secret_key(args.dev)?, Vec::new());
    let pool = settings.database.service_pool(DbUser::Handler, 16).await?;
    let nats = settings.nats("runledger-handler").await?;
    Ok(Handler {
        store: EventStore::new(pool),
        nats,
        names: settings.names()?,
        keyring,
        settings: HandlerSettings {
            max_batch: args.max_batch,
            executor_lease: Duration::from_secs(args.executor_lease_s),
            ..HandlerSettings::default()
        },
        stats: Default::default(),
    })
}

/// The executor's settings and NATS connection. Its name comes from `RUNLEDGER_EXECUTOR_NAME`,
/// else `<hostname>-<pid>`.
async fn executor(
    settings: &Settings,
    args: &ServeArgs,
) -> anyhow::Result<(async_nats::Client, ExecutorSettings)> {
    let keyring = Keyring::new(settings.secret_key(args.dev)?, Vec::new());
    let name = std::env::var("RUNLEDGER_EXECUTOR_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(default_executor_name);
    let nats = settings.nats(&format!("runledger-executor-{name}")).await?;
    tracing::info!(%name, "executor name");
    let mut executor = ExecutorSettings::new(name, settings.names()?, keyring);
    executor.max_concurrent_runs = usize::try_from(args.executor_max_runs).unwrap_or(16);
    executor.allow_local = args.executor_allow_local || args.dev;
    if executor.allow_local {
        tracing::warn!("this executor runs work on `local` machines, as its own child processes");
    }
    executor.heartbeat_every =
        (Duration::from_secs(args.executor_lease_s) / 6).max(Duration::from_millis(500));
    Ok((nats, executor))
}

fn default_executor_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "executor".to_owned());
    format!("{host}-{}", std::process::id())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
