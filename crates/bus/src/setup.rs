//! Connecting, and creating the streams and consumers runledger needs when they are missing.

use crate::auth::{CredentialError, NatsAuth};
use crate::names::BusNames;
use async_nats::jetstream::{self, consumer, stream};
use std::time::Duration;

/// NATS failures, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The server.
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// A credential or certificate file could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// A stream's claim did not stick (it was changed while it was written).
    #[error(
        "NATS stream {stream} could not be claimed for this log: its description was changed meanwhile"
    )]
    Claim {
        /// The stream.
        stream: String,
    },
    /// A JetStream call failed.
    #[error("JetStream {what} failed: {source}")]
    JetStream {
        /// The operation.
        what: &'static str,
        /// The server's or client's error.
        source: async_nats::Error,
    },
}

fn js_error(what: &'static str) -> impl FnOnce(async_nats::Error) -> BusError {
    move |source| BusError::JetStream { what, source }
}

impl BusError {
    /// Wraps a JetStream failure of `what`.
    pub(crate) fn js(what: &'static str) -> impl FnOnce(async_nats::Error) -> BusError {
        js_error(what)
    }
}

/// Connects to NATS anonymously, naming the connection after the component.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, BusError> {
    connect_with(url, name, &NatsAuth::default()).await
}

/// Connects to NATS with `auth`'s credentials and TLS settings, naming the connection after
/// the component.
pub async fn connect_with(
    url: &str,
    name: &str,
    auth: &NatsAuth,
) -> Result<async_nats::Client, BusError> {
    auth.apply(async_nats::ConnectOptions::new())
        .await?
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| BusError::Connect {
            url: url.to_owned(),
            source,
        })
}

/// A JetStream context that waits (rather than fails) when many publish acks are in flight.
pub fn jetstream(client: async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .max_ack_inflight(20_000)
        .backpressure_on_inflight(true)
        .build(client)
}

/// The configuration of `RUNLEDGER_COMMANDS` (without a claim).
pub(crate) fn commands_config(names: &BusNames) -> stream::Config {
    stream::Config {
        name: names.commands_stream(),
        subjects: vec![names.commands_filter()],
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(7 * 24 * 3600),
        duplicate_window: Duration::from_secs(120),
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// The configuration of `RUNLEDGER_EVENTS` (without a claim).
pub(crate) fn events_config(names: &BusNames) -> stream::Config {
    stream::Config {
        name: names.events_stream(),
        subjects: vec![names.events_filter()],
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        storage: stream::StorageType::File,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates `RUNLEDGER_COMMANDS` and `RUNLEDGER_EVENTS` when they are missing, without claiming
/// them for a log: the handler claims them ([`crate::claim`]) before it relays an event.
pub async fn ensure_streams(
    js: &jetstream::Context,
    names: &BusNames,
) -> Result<(stream::Stream, stream::Stream), BusError> {
    let commands = js
        .get_or_create_stream(commands_config(names))
        .await
        .map_err(|err| js_error("create commands stream")(err.into()))?;
    let events = js
        .get_or_create_stream(events_config(names))
        .await
        .map_err(|err| js_error("create events stream")(err.into()))?;
    Ok((commands, events))
}

/// The handler's durable pull consumer: explicit acks, every command from the start. A message
/// not acked within `ack_wait` (its handler crashed) is delivered again.
pub async fn handler_consumer(
    commands: &stream::Stream,
    names: &BusNames,
    ack_wait: Duration,
) -> Result<consumer::PullConsumer, BusError> {
    let durable = names.handler_consumer();
    commands
        .get_or_create_consumer(
            durable,
            consumer::pull::Config {
                durable_name: Some(durable.to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait,
                max_ack_pending: 20_000,
                filter_subject: names.commands_filter(),
                ..Default::default()
            },
        )
        .await
        .map_err(|err| js_error("create handler consumer")(err.into()))
}
