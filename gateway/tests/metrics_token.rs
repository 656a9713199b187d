//! `/metrics` behind `RUNLEDGER_METRICS_TOKEN`: on the gateway's port and on the standalone
//! listener, a scrape without the token, or with another, gets 401; with it, the series.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::StatusCode;
use runledger_gateway::metrics::{MetricsToken, serve_standalone};
use runledger_test_support::TestLab;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "scrape-me-4f1c2a";

/// The status of `GET url` with `token` as a bearer token (none: no header).
async fn scrape(url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn check(url: &str) {
    let (status, body) = scrape(url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("RUNLEDGER_METRICS_TOKEN"), "{body}");
    let (status, _) = scrape(url, Some("scrape-me-4f1c2b")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = scrape(url, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("# TYPE"), "{body}");
}

#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let lab = TestLab::create().await;
    let shutdown = CancellationToken::new();
    let (addr, _, _) = common::serve_gateway_with(&lab, &shutdown, |settings| {
        settings.metrics_token = MetricsToken::new(Some(TOKEN));
    })
    .await;
    check(&format!("http://{addr}/metrics")).await;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let standalone = listener.local_addr().unwrap();
    drop(listener);
    let server = tokio::spawn(serve_standalone(
        standalone,
        MetricsToken::new(Some(TOKEN)),
        shutdown.clone(),
    ));
    let url = format!("http://{standalone}/metrics");
    runledger_test_support::eventually(
        std::time::Duration::from_secs(10),
        "the standalone listener",
        || async { reqwest::get(&url).await.ok().map(drop) },
    )
    .await;
    check(&url).await;
    shutdown.cancel();
    server.await.unwrap().unwrap();
    lab.cleanup().await;
}

#[tokio::test]
async fn metrics_are_open_without_a_token() {
    let lab = TestLab::create().await;
    let shutdown = CancellationToken::new();
    let (addr, _, _) = common::serve_gateway_with(&lab, &shutdown, |_| {}).await;
    let (status, _) = scrape(&format!("http://{addr}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK);
    shutdown.cancel();
    lab.cleanup().await;
}
