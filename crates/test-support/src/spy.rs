//! An HTTP server on another loopback port that only records what reaches it: the "other
//! origin" a malicious or misconfigured server points a client at, to check that no credential
//! is sent there.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// One request the spy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path and query.
    pub uri: String,
    /// The `Authorization` header, if one came.
    pub authorization: Option<String>,
}

/// A running spy; answers every request `404` and stops when dropped.
pub struct HttpSpy {
    /// Its URL, ending in `/`.
    pub url: String,
    requests: Arc<Mutex<Vec<SpiedRequest>>>,
    task: JoinHandle<()>,
}

impl Drop for HttpSpy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpSpy {
    /// Starts the spy on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}/", listener.local_addr().expect("local address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(Arc::clone(&requests));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            requests,
            task,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<SpiedRequest> {
        self.requests.lock().expect("spy requests").clone()
    }

    /// True when any request carried an `Authorization` header.
    pub fn saw_credentials(&self) -> bool {
        self.requests().iter().any(|r| r.authorization.is_some())
    }
}

async fn record(
    State(requests): State<Arc<Mutex<Vec<SpiedRequest>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> (StatusCode, &'static str) {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let request = SpiedRequest {
        method: method.to_string(),
        uri: uri.to_string(),
        authorization,
    };
    requests.lock().expect("spy requests").push(request);
    (StatusCode::NOT_FOUND, "Not Found")
}
