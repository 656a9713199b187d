//! A gateway asked to stop ends its live streams, so that its graceful shutdown is not held up
//! by a dashboard left open: the status stream ends and the server task returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures::StreamExt;
use runledger_test_support::TestLab;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_live_streams_and_the_server() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;

    let shutdown = CancellationToken::new();
    let (addr, server) = common::serve_gateway_task(&lab, &shutdown).await;

    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let token = common::admin_token(addr).await;
    let stream = http
        .get(format!("{base}/api/v1/events/stream"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();

    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the status stream ends on shutdown");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the gateway stops while a client still listened")
        .unwrap()
        .unwrap();
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
