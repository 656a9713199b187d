//! What the gateway's test binaries share: a gateway over a test lab, on a loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_gateway::{AppState, GatewaySettings};
use runledger_test_support::TestLab;
use std::net::SocketAddr;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves a gateway over `lab` on a free loopback port until `shutdown`; returns its address.
#[allow(dead_code)] // not every test binary uses every helper
pub async fn serve_gateway(lab: &TestLab, shutdown: &CancellationToken) -> SocketAddr {
    serve_gateway_task(lab, shutdown).await.0
}

/// [`serve_gateway`], also returning the server's task (it ends once the gateway has stopped).
pub async fn serve_gateway_task(
    lab: &TestLab,
    shutdown: &CancellationToken,
) -> (
    SocketAddr,
    JoinHandle<Result<(), runledger_gateway::GatewayError>>,
) {
    serve_gateway_with(lab, shutdown, |_| {}).await
}

/// [`serve_gateway_task`] with settings `configure` changes from the defaults.
pub async fn serve_gateway_with(
    lab: &TestLab,
    shutdown: &CancellationToken,
    configure: impl FnOnce(&mut GatewaySettings),
) -> (
    SocketAddr,
    JoinHandle<Result<(), runledger_gateway::GatewayError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = GatewaySettings::new(addr);
    configure(&mut settings);
    let state = AppState::new(
        lab.db.pool.clone(),
        lab.nats.client.clone(),
        lab.nats.names.clone(),
        settings,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let task = tokio::spawn(runledger_gateway::serve(listener, state, shutdown.clone()));
    (addr, task)
}
