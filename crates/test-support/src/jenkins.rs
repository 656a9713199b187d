//! A fake Jenkins server on a loopback port, answering the Remote Access API calls runledger
//! makes the way Jenkins documents them: crumb issuer (crumb bound to a session cookie),
//! `buildWithParameters` (201 + `Location` of the queue item; an identical waiting item is
//! coalesced as Jenkins' queue does), queue items, the job's builds with their parameters,
//! progressive console text (`X-Text-Size`, `X-More-Data`), build JSON, test report, `stop` and
//! `queue/cancelItem`. Basic auth with an API token is required on every call.
//!
//! For the attacks a client must resist, it can be told to name queue items or builds on another
//! server (an [`HttpSpy`](crate::HttpSpy) on another port) and to break a console answer off
//! mid-body.
//!
//! Time is simulated from each item's creation: a queue item becomes a build after
//! `queue_delay`; a build reveals one console line per `line_delay`, then ends with `result`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The user and API token the fake accepts.
pub const JENKINS_USER: &str = "ci-bot";
/// The API token of [`JENKINS_USER`].
pub const JENKINS_TOKEN: &str = "11fa4c1b9e7d2a0c35e1f0b6d2c8a9e4f7";
const CRUMB: &str = "5f1c0d3e9b8a7f6e";
const SESSION: &str = "JSESSIONID.fake=node0abc";

/// How the one job of the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeJob {
    /// Its full name, e.g. `team/nightly` (served at `/job/team/job/nightly/`).
    pub name: String,
    /// Console lines, revealed one per `line_delay`.
    pub lines: Vec<String>,
    /// The result once every line is out: `SUCCESS`, `UNSTABLE`, `FAILURE`.
    pub result: String,
    /// How long a queue item waits before its build starts.
    pub queue_delay: Duration,
    /// Time between console lines.
    pub line_delay: Duration,
    /// `testReport/api/json`, if the build has one.
    pub test_report: Option<Value>,
}

#[derive(Debug)]
struct QueueItem {
    parameters: Vec<(String, String)>,
    created: Instant,
    cancelled: bool,
    build: Option<u64>,
}

#[derive(Debug)]
struct Build {
    parameters: Vec<(String, String)>,
    started: Instant,
    stopped: Option<Instant>,
}

#[derive(Debug, Default)]
struct Jenkins {
    queue: BTreeMap<u64, QueueItem>,
    builds: BTreeMap<u64, Build>,
    /// Trigger POSTs received.
    triggers: usize,
    /// Answer this many more triggers with 502 after queueing them (an answer lost on the way).
    lose_trigger_answers: usize,
    /// `stop` / `term` / `kill` POSTs received, by build.
    stops: Vec<(u64, String)>,
    /// Queue items cancelled through `queue/cancelItem`.
    cancelled_items: Vec<u64>,
    /// Another server's base URL to name in queue item `Location`s (a malicious or misconfigured
    /// Jenkins pointing elsewhere).
    queue_items_at: Option<String>,
    /// Another server's base URL to name in build URLs (queue items' `executable`, job builds).
    builds_at: Option<String>,
    /// Break the next console answer off after this many body bytes (`true`), or send them and
    /// then nothing more (`false`).
    cut_console: Option<(usize, bool)>,
}

struct Shared {
    job: FakeJob,
    base: String,
    state: Mutex<Jenkins>,
}

/// A running fake Jenkins; stops when dropped.
pub struct FakeJenkins {
    /// Its URL, ending in `/`.
    pub url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeJenkins {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeJenkins {
    /// Starts the fake with one job on a free loopback port.
    pub async fn start(job: FakeJob) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let url = format!("http://{addr}/");
        let shared = Arc::new(Shared {
            job,
            base: url.clone(),
            state: Mutex::new(Jenkins::default()),
        });
        let app = axum::Router::new()
            .fallback(route)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    fn state(&self) -> MutexGuard<'_, Jenkins> {
        self.shared.state.lock().expect("fake Jenkins state")
    }

    /// Trigger POSTs received so far.
    pub fn triggers(&self) -> usize {
        self.state().triggers
    }

    /// Builds started so far.
    pub fn builds(&self) -> usize {
        let mut state = self.state();
        advance(&self.shared.job, &mut state);
        state.builds.len()
    }

    /// The parameters build `number` was started with.
    pub fn build_parameters(&self, number: u64) -> Vec<(String, String)> {
        self.state()
            .builds
            .get(&number)
            .map(|b| b.parameters.clone())
            .unwrap_or_default()
    }

    /// `(build, how)` of every stop request.
    pub fn stops(&self) -> Vec<(u64, String)> {
        self.state().stops.clone()
    }

    /// Queue items cancelled.
    pub fn cancelled_items(&self) -> Vec<u64> {
        self.state().cancelled_items.clone()
    }

    /// The next `count` triggers are queued but answered 502, as when a proxy loses the answer.
    pub fn lose_trigger_answers(&self, count: usize) {
        self.state().lose_trigger_answers = count;
    }

    /// From now on, trigger answers name the queue item on `base` (another origin).
    pub fn answer_queue_items_at(&self, base: &str) {
        self.state().queue_items_at = Some(base.to_owned());
    }

    /// From now on, build URLs (a started queue item's `executable`, the job's builds) are on
    /// `base` (another origin).
    pub fn answer_builds_at(&self, base: &str) {
        self.state().builds_at = Some(base.to_owned());
    }

    /// The next console answer sends `bytes` bytes of its body, then breaks the connection.
    pub fn cut_next_console_after(&self, bytes: usize) {
        self.state().cut_console = Some((bytes, true));
    }

    /// The next console answer sends `bytes` bytes of its body, then stalls forever.
    pub fn stall_next_console_after(&self, bytes: usize) {
        self.state().cut_console = Some((bytes, false));
    }

    /// Starts a build directly (as if triggered earlier), returning its number and URL.
    pub fn start_build(&self, parameters: &[(&str, &str)]) -> (u64, String) {
        let parameters = parameters
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let number = self.state().new_build(parameters);
        (number, self.shared.build_url(number))
    }
}

impl Jenkins {
    /// Starts the next build, now, with `parameters`; returns its number.
    fn new_build(&mut self, parameters: Vec<(String, String)>) -> u64 {
        let number = self.builds.len() as u64 + 1;
        let build = Build {
            parameters,
            started: Instant::now(),
            stopped: None,
        };
        self.builds.insert(number, build);
        number
    }
}

impl Shared {
    fn job_path(&self) -> String {
        self.job
            .name
            .split('/')
            .map(|part| format!("job/{part}/"))
            .collect()
    }

    fn build_url(&self, number: u64) -> String {
        format!("{}{}{number}/", self.base, self.job_path())
    }

    /// The build URL as answered to clients: on another server when told so.
    fn answered_build_url(&self, state: &Jenkins, number: u64) -> String {
        let base = state.builds_at.as_deref().unwrap_or(&self.base);
        format!("{base}{}{number}/", self.job_path())
    }
}

/// Queue items whose delay passed become builds, in item order.
fn advance(job: &FakeJob, state: &mut Jenkins) {
    let ready: Vec<u64> = state
        .queue
        .iter()
        .filter(|(_, item)| {
            !item.cancelled && item.build.is_none() && item.created.elapsed() >= job.queue_delay
        })
        .map(|(id, _)| *id)
        .collect();
    for id in ready {
        let parameters = state.queue[&id].parameters.clone();
        let number = state.new_build(parameters);
        if let Some(item) = state.queue.get_mut(&id) {
            item.build = Some(number);
        }
    }
}

/// The console so far and whether the build still runs.
fn console(job: &FakeJob, build: &Build) -> (String, bool) {
    let elapsed = build.stopped.unwrap_or_else(Instant::now) - build.started;
    let shown = if job.line_delay.is_zero() {
        job.lines.len()
    } else {
        ((elapsed.as_millis() / job.line_delay.as_millis()) as usize).min(job.lines.len())
    };
    let mut text: String = job.lines[..shown]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    if build.stopped.is_some() {
        text.push_str("Aborted by ci-bot\nFinished: ABORTED\n");
        return (text, false);
    }
    let done = shown == job.lines.len();
    if done {
        text.push_str(&format!("Finished: {}\n", job.result));
    }
    (text, !done)
}

/// A body that sends the first `cut` bytes of `body`, then fails (the connection breaks) or,
/// unless `broken`, sends nothing more.
fn broken_off(mut body: Vec<u8>, cut: usize, broken: bool) -> Response {
    use futures::StreamExt as _;
    body.truncate(cut);
    let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))]);
    let rest = match broken {
        true => {
            futures::stream::iter([Err(std::io::Error::other("connection broken off"))]).boxed()
        }
        false => futures::stream::pending().boxed(),
    };
    axum::body::Body::from_stream(first.chain(rest)).into_response()
}

fn parameters_json(parameters: &[(String, String)]) -> Value {
    let list: Vec<Value> = parameters
        .iter()
        .map(|(name, value)| json!({"_class": "hudson.model.StringParameterValue", "name": name, "value": value}))
        .collect();
    json!([{"_class": "hudson.model.ParametersAction", "parameters": list}])
}

fn status(code: StatusCode, body: &str) -> Response {
    (code, body.to_owned()).into_response()
}

fn authorised(headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{JENKINS_USER}:{JENKINS_TOKEN}"));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"))
}

fn crumb_ok(headers: &HeaderMap) -> bool {
    let crumb = headers.get("Jenkins-Crumb").and_then(|v| v.to_str().ok()) == Some(CRUMB);
    let session = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(SESSION));
    crumb && session
}

async fn route(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if !authorised(&headers) {
        return status(StatusCode::UNAUTHORIZED, "Invalid password/token for user");
    }
    if method == Method::POST && !crumb_ok(&headers) {
        return status(
            StatusCode::FORBIDDEN,
            "No valid crumb was included in the request",
        );
    }
    let path = uri.path().trim_start_matches('/').to_owned();
    let job_path = shared.job_path();
    let mut state = shared.state.lock().expect("fake Jenkins state");
    advance(&shared.job, &mut state);
    if path == "crumbIssuer/api/json" {
        let body = json!({"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": CRUMB, "crumbRequestField": "Jenkins-Crumb"});
        return (
            [(header::SET_COOKIE, format!("{SESSION}; Path=/; HttpOnly"))],
            axum::Json(body),
        )
            .into_response();
    }
    if path == "queue/api/json" {
        let items: Vec<Value> = state
            .queue
            .iter()
            .filter(|(_, item)| !item.cancelled && item.build.is_none())
            .map(|(id, item)| json!({"id": id, "actions": parameters_json(&item.parameters)}))
            .collect();
        return axum::Json(json!({"items": items})).into_response();
    }
    if path == "queue/cancelItem" && method == Method::POST {
        let Some(id) = query.get("id").and_then(|id| id.parse::<u64>().ok()) else {
            return status(StatusCode::BAD_REQUEST, "id");
        };
        if let Some(item) = state.queue.get_mut(&id)
            && item.build.is_none()
        {
            item.cancelled = true;
            state.cancelled_items.push(id);
        }
        return status(StatusCode::NO_CONTENT, "");
    }
    if let Some(rest) = path.strip_prefix("queue/item/") {
        let id = rest.split('/').next().and_then(|id| id.parse::<u64>().ok());
        let Some(item) = id.and_then(|id| state.queue.get(&id)) else {
            return status(StatusCode::NOT_FOUND, "no such queue item");
        };
        let body = match (item.build, item.cancelled) {
            (Some(number), _) => {
                json!({"_class": "hudson.model.Queue$LeftItem", "cancelled": false,
                "executable": {"_class": "hudson.model.FreeStyleBuild", "number": number, "url": shared.answered_build_url(&state, number)}})
            }
            (None, true) => {
                json!({"_class": "hudson.model.Queue$LeftItem", "cancelled": true, "executable": null})
            }
            (None, false) => json!({"_class": "hudson.model.Queue$WaitingItem", "id": id,
                "why": "Waiting for next available executor", "actions": parameters_json(&item.parameters)}),
        };
        return axum::Json(body).into_response();
    }
    let Some(rest) = path.strip_prefix(&job_path) else {
        return status(StatusCode::NOT_FOUND, "Not Found");
    };
    match (rest, &method) {
        ("buildWithParameters", &Method::POST) => {
            state.triggers += 1;
            let parameters: Vec<(String, String)> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            // Jenkins' queue coalesces a trigger identical to a waiting item.
            let waiting = state
                .queue
                .iter()
                .find(|(_, item)| {
                    !item.cancelled && item.build.is_none() && item.parameters == parameters
                })
                .map(|(id, _)| *id);
            let id = waiting.unwrap_or_else(|| {
                let id = state.queue.len() as u64 + 100;
                state.queue.insert(
                    id,
                    QueueItem {
                        parameters,
                        created: Instant::now(),
                        cancelled: false,
                        build: None,
                    },
                );
                id
            });
            if state.lose_trigger_answers > 0 {
                state.lose_trigger_answers -= 1;
                return status(StatusCode::BAD_GATEWAY, "Bad Gateway");
            }
            let base = state.queue_items_at.as_deref().unwrap_or(&shared.base);
            let location = format!("{base}queue/item/{id}/");
            return (StatusCode::CREATED, [(header::LOCATION, location)]).into_response();
        }
        ("api/json", &Method::GET) => {
            let builds: Vec<Value> = state
                .builds
                .iter()
                .rev()
                .map(|(number, build)| json!({"_class": "hudson.model.FreeStyleBuild", "number": number,
                    "url": shared.answered_build_url(&state, *number), "actions": parameters_json(&build.parameters)}))
                .collect();
            return axum::Json(json!({"builds": builds})).into_response();
        }
        _ => {}
    }
    let mut parts = rest.splitn(2, '/');
    let number = parts.next().and_then(|n| n.parse::<u64>().ok());
    let tail = parts.next().unwrap_or_default();
    let Some(number) = number.filter(|n| state.builds.contains_key(n)) else {
        return status(StatusCode::NOT_FOUND, "Not Found");
    };
    match (tail, &method) {
        ("logText/progressiveText", &Method::GET) => {
            let (text, more) = console(&shared.job, &state.builds[&number]);
            let start: usize = query.get("start").and_then(|s| s.parse().ok()).unwrap_or(0);
            let page = text
                .get(start.min(text.len())..)
                .unwrap_or_default()
                .to_owned();
            let mut headers = vec![(
                header::HeaderName::from_static("x-text-size"),
                text.len().to_string(),
            )];
            if more {
                headers.push((
                    header::HeaderName::from_static("x-more-data"),
                    "true".into(),
                ));
            }
            let mut response = match state.cut_console.take() {
                Some((cut, broken)) => broken_off(page.into_bytes(), cut, broken),
                None => page.into_response(),
            };
            for (name, value) in headers {
                if let Ok(value) = value.parse() {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        ("api/json", &Method::GET) => {
            let build = &state.builds[&number];
            let (_, building) = console(&shared.job, build);
            let result = match (building, build.stopped) {
                (true, _) => Value::Null,
                (false, Some(_)) => json!("ABORTED"),
                (false, None) => json!(shared.job.result),
            };
            axum::Json(
                json!({"_class": "hudson.model.FreeStyleBuild", "number": number,
                "building": building, "result": result}),
            )
            .into_response()
        }
        ("testReport/api/json", &Method::GET) => match &shared.job.test_report {
            Some(report) if state.builds[&number].stopped.is_none() => {
                axum::Json(report.clone()).into_response()
            }
            _ => status(StatusCode::NOT_FOUND, "Not Found"),
        },
        ("stop" | "term" | "kill", &Method::POST) => {
            state.stops.push((number, tail.to_owned()));
            let (_, building) = console(&shared.job, &state.builds[&number]);
            if let Some(build) = state.builds.get_mut(&number).filter(|_| building) {
                build.stopped.get_or_insert_with(Instant::now);
            }
            (
                StatusCode::FOUND,
                [(header::LOCATION, shared.build_url(number))],
            )
                .into_response()
        }
        _ => status(StatusCode::NOT_FOUND, "Not Found"),
    }
}
