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
    let (addr, _, task) = serve_gateway_with(lab, shutdown, |_| {}).await;
    (addr, task)
}

/// A gateway whose settings `adjust` changes first; returns its address, its state (to read
/// its counters) and its task. Failed logins wait 30 s from the first one beyond the free ones,
/// so that no test depends on how fast its requests are.
#[allow(dead_code)] // not every test binary uses every helper
pub async fn serve_gateway_with(
    lab: &TestLab,
    shutdown: &CancellationToken,
    adjust: impl FnOnce(&mut GatewaySettings),
) -> (
    SocketAddr,
    AppState,
    JoinHandle<Result<(), runledger_gateway::GatewayError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = GatewaySettings::new(addr);
    settings.login_limits.base_delay = std::time::Duration::from_secs(30);
    adjust(&mut settings);
    let state = AppState::new(
        lab.db.pool.clone(),
        lab.nats.client.clone(),
        lab.nats.names.clone(),
        settings,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let serving = runledger_gateway::serve(listener, state.clone(), shutdown.clone());
    (addr, state, tokio::spawn(serving))
}

/// The admin [`admin_token`] registers and logs in.
#[allow(dead_code)]
pub const ADMIN: (&str, &str) = ("ada", "ada-password-1");

/// Registers the admin [`ADMIN`] through the lab's handler; the read models must be followed
/// (a projector running) for the login that comes next.
#[allow(dead_code)]
pub async fn register_admin(lab: &TestLab) {
    let (username, password) = ADMIN;
    let admin = serde_json::json!({"username": username, "role": "admin", "password": password});
    let outcome = lab.client().send("register_user", "bootstrap", admin).await;
    assert!(outcome.accepted, "{outcome:?}");
}

/// A token of [`ADMIN`] from the gateway at `addr`, once its login works (the accounts read
/// model has caught up).
#[allow(dead_code)]
pub async fn admin_token(addr: SocketAddr) -> String {
    let (username, password) = ADMIN;
    let http = reqwest::Client::new();
    runledger_test_support::eventually(std::time::Duration::from_secs(30), "a login", || async {
        let answer = http
            .post(format!("http://{addr}/api/v1/tokens"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = answer.json().await.ok()?;
        body["token"].as_str().map(str::to_owned)
    })
    .await
}

/// The admin's HTTP client for a gateway: sends a request with [`ADMIN`]'s token and gives back
/// the status and the JSON answer (`null` when there is none).
#[allow(dead_code)]
pub struct AdminApi {
    base: String,
    token: String,
    http: reqwest::Client,
}

#[allow(dead_code)]
impl AdminApi {
    /// Logs the admin in at the gateway at `addr`.
    pub async fn at(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            token: admin_token(addr).await,
            http: reqwest::Client::new(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `method path` with `body` as JSON.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }
}
