//! What the gateway's test binaries share: a gateway over a test lab, on a loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_gateway::{AppState, GatewaySettings};
use runledger_test_support::TestLab;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Serves a gateway over `lab` on a free loopback port until `shutdown`; returns its address.
pub async fn serve_gateway(lab: &TestLab, shutdown: &CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(
        lab.db.pool.clone(),
        lab.nats.client.clone(),
        lab.nats.names.clone(),
        GatewaySettings::new(addr),
        shutdown.clone(),
    )
    .await
    .unwrap();
    tokio::spawn(runledger_gateway::serve(listener, state, shutdown.clone()));
    addr
}
