//! [`JenkinsClient`]: one server, one user; every call bounded in time, classified on failure.
//!
//! The API token goes only to the server's own origin: every request, whether to a path below
//! the server's URL or to an absolute URL Jenkins answered with (a `Location`, a build's `url`)
//! or an earlier attempt recorded, is checked against the scheme, host and port of the server's
//! URL first. A URL of another origin is not requested at all (not even without credentials):
//! the call fails as [`JenkinsErrorKind::ForeignOrigin`] and the run ends `error`.

use super::api::{
    BuildJson, BuildState, JobBuildsJson, QueueItemJson, QueueJson, QueueState, TestReport,
    TestReportJson,
};
use reqwest::header::{HeaderMap, HeaderValue, LOCATION};
use reqwest::{RequestBuilder, Response, StatusCode};
use runledger_types::jenkins::{JenkinsJobName, RUN_ID_PARAMETER, same_origin};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any one request may take; for the console, how long it may go without a byte.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many recent builds are searched for a run's build.
const SEARCHED_BUILDS: u32 = 100;

/// What kind of failure a call met: decides the run's status and error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JenkinsErrorKind {
    /// No answer, or a 5xx / 429: worth trying again later.
    Unreachable,
    /// 401 or 403: the user or API token is wrong, or lacks the permission.
    AuthFailed,
    /// 404 on the job: the test case names a job the server does not have.
    NoSuchJob,
    /// Any other answer runledger cannot use.
    Refused,
    /// Jenkins pointed at a URL on another origin than the server's; it was not requested.
    ForeignOrigin,
}

impl JenkinsErrorKind {
    /// The run's `error_code` for this failure.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::Unreachable => "jenkins_unreachable",
            Self::AuthFailed => "jenkins_auth_failed",
            Self::NoSuchJob => "jenkins_no_such_job",
            Self::Refused => "jenkins_refused",
            Self::ForeignOrigin => "jenkins_origin_mismatch",
        }
    }
}

/// A failed call: what was asked, and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("Jenkins {what}: {detail}")]
pub struct JenkinsError {
    /// The kind, for the run's classification.
    pub kind: JenkinsErrorKind,
    what: &'static str,
    detail: String,
}

impl JenkinsError {
    pub(super) fn new(
        kind: JenkinsErrorKind,
        what: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            what,
            detail: detail.into(),
        }
    }

    pub(super) fn transport(what: &'static str, err: &reqwest::Error) -> Self {
        Self::new(JenkinsErrorKind::Unreachable, what, without_url(err))
    }
}

/// reqwest's message without the URL (which is the server's, already known to the reader).
fn without_url(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    if let Some(url) = err.url() {
        message = message.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A client of one Jenkins server as one user. Cheap to build per run.
pub struct JenkinsClient {
    http: reqwest::Client,
    /// For the console: no bound on the whole answer (it is read in pieces), only on silence.
    pub(super) streaming: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
    /// The crumb header and session cookie, fetched before the first `POST`.
    crumb: Mutex<Option<HeaderMap>>,
}

impl std::fmt::Debug for JenkinsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JenkinsClient")
            .field("base", &self.base)
            .field("user", &self.auth.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

impl JenkinsClient {
    /// A client of the server at `base` (ending in `/`), as `auth` (user, API token) if given.
    pub fn new(base: String, auth: Option<(String, String)>) -> Result<Self, JenkinsError> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                // Redirects are never followed (the queue item's Location is read and checked,
                // `stop` answers with one), so credentials cannot be carried elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("runledger/", env!("CARGO_PKG_VERSION")))
        };
        let http = builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| JenkinsError::transport("client", &err))?;
        let streaming = builder()
            .read_timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| JenkinsError::transport("client", &err))?;
        Ok(Self {
            http,
            streaming,
            base,
            auth,
            crumb: Mutex::new(None),
        })
    }

    /// `path` below the server's URL, or an absolute URL if it is on the server's origin.
    pub(super) fn url(&self, path: &str, what: &'static str) -> Result<String, JenkinsError> {
        if !path.contains("://") {
            return Ok(format!("{}{path}", self.base));
        }
        self.own_origin(path, what).map(str::to_owned)
    }

    /// `url` if it is on the server's origin; a [`JenkinsErrorKind::ForeignOrigin`] otherwise.
    fn own_origin<'a>(&self, url: &'a str, what: &'static str) -> Result<&'a str, JenkinsError> {
        if same_origin(&self.base, url) {
            return Ok(url);
        }
        tracing::warn!(%url, base = %self.base, what, "Jenkins named a URL on another origin; not requesting it");
        Err(JenkinsError::new(
            JenkinsErrorKind::ForeignOrigin,
            what,
            format!(
                "{url} is not on the origin of the Jenkins server {}; it was not requested",
                self.base
            ),
        ))
    }

    fn get(&self, url: &str, what: &'static str) -> Result<RequestBuilder, JenkinsError> {
        Ok(self.authed(self.http.get(self.url(url, what)?)))
    }

    pub(super) fn authed(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Some((user, token)) => request.basic_auth(user, Some(token)),
            None => request,
        }
    }

    /// A `POST` with the crumb (fetched once; none when the server issues none).
    async fn post(&self, url: &str, what: &'static str) -> Result<RequestBuilder, JenkinsError> {
        let mut crumb = self.crumb.lock().await;
        if crumb.is_none() {
            *crumb = Some(self.fetch_crumb().await?);
        }
        let headers = crumb.clone().unwrap_or_default();
        tracing::trace!(what, "POST with crumb");
        Ok(self
            .authed(self.http.post(self.url(url, what)?))
            .headers(headers))
    }

    async fn fetch_crumb(&self) -> Result<HeaderMap, JenkinsError> {
        const WHAT: &str = "crumb";
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Crumb {
            crumb: String,
            crumb_request_field: String,
        }
        let response = self
            .get("crumbIssuer/api/json", WHAT)?
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(HeaderMap::new());
        }
        let response = checked(response, WHAT).await?;
        // The crumb belongs to the session it was issued in.
        let cookies: Vec<String> = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(';').next())
            .map(str::to_owned)
            .collect();
        let crumb: Crumb = json(response, WHAT).await?;
        let mut headers = HeaderMap::new();
        let invalid = |_| JenkinsError::new(JenkinsErrorKind::Refused, WHAT, "unusable crumb");
        let name = reqwest::header::HeaderName::from_bytes(crumb.crumb_request_field.as_bytes())
            .map_err(|_| invalid(()))?;
        headers.insert(
            name,
            HeaderValue::from_str(&crumb.crumb).map_err(|_| invalid(()))?,
        );
        if !cookies.is_empty() {
            let cookie = HeaderValue::from_str(&cookies.join("; ")).map_err(|_| invalid(()))?;
            headers.insert(reqwest::header::COOKIE, cookie);
        }
        Ok(headers)
    }

    /// Triggers a build of `job` with `parameters` plus [`RUN_ID_PARAMETER`] = `run_id`;
    /// returns the queue item's URL.
    pub async fn trigger(
        &self,
        job: &JenkinsJobName,
        parameters: &BTreeMap<String, String>,
        run_id: &str,
    ) -> Result<String, JenkinsError> {
        const WHAT: &str = "trigger";
        let mut form: Vec<(&str, &str)> = parameters
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        form.push((RUN_ID_PARAMETER, run_id));
        let url = format!("{}buildWithParameters", job.url_path());
        let response = self
            .post(&url, WHAT)
            .await?
            .form(&form)
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(JenkinsError::new(
                JenkinsErrorKind::NoSuchJob,
                WHAT,
                format!("the server has no job {job}"),
            ));
        }
        let response = checked(response, WHAT).await?;
        // Jenkins answers a trigger with 201; a redirect (to a login page, say) queued nothing.
        if !response.status().is_success() {
            return Err(JenkinsError::new(
                JenkinsErrorKind::Refused,
                WHAT,
                format!("HTTP {} instead of 201 Created", response.status()),
            ));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                JenkinsError::new(JenkinsErrorKind::Refused, WHAT, "no Location in the answer")
            })?;
        let item = absolute(&self.base, location);
        self.own_origin(&item, WHAT)?;
        Ok(item)
    }

    /// The state of the queue item at `url`; `None` once Jenkins has forgotten it (404).
    pub async fn queue_item(&self, url: &str) -> Result<Option<QueueState>, JenkinsError> {
        const WHAT: &str = "queue item";
        let response = self
            .get(&format!("{}api/json", slash(url)), WHAT)?
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let item: QueueItemJson = json(checked(response, WHAT).await?, WHAT).await?;
        let state = QueueState::from(item);
        if let QueueState::Started { url, .. } = &state {
            self.own_origin(url, WHAT)?;
        }
        Ok(Some(state))
    }

    /// The build triggered for `run_id`: its number and URL if it started, else its queue item's
    /// URL if it waits (found by [`RUN_ID_PARAMETER`], when the job declares that parameter).
    pub async fn find_triggered(
        &self,
        job: &JenkinsJobName,
        run_id: &str,
    ) -> Result<Option<Found>, JenkinsError> {
        const WHAT: &str = "search for the run's build";
        let tree =
            format!("builds[number,url,actions[parameters[name,value]]]{{0,{SEARCHED_BUILDS}}}");
        let url = format!("{}api/json", job.url_path());
        let response = self
            .get(&url, WHAT)?
            .query(&[("tree", tree.as_str())])
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        let builds: JobBuildsJson = json(checked(response, WHAT).await?, WHAT).await?;
        if let Some(build) = builds
            .builds
            .into_iter()
            .find(|b| b.has_parameter(RUN_ID_PARAMETER, run_id))
            && let (Some(number), Some(url)) = (build.number, build.url)
        {
            self.own_origin(&url, WHAT)?;
            return Ok(Some(Found::Build { number, url }));
        }
        let tree = "items[id,actions[parameters[name,value]]]";
        let response = self
            .get("queue/api/json", WHAT)?
            .query(&[("tree", tree)])
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        let queue: QueueJson = json(checked(response, WHAT).await?, WHAT).await?;
        Ok(queue
            .items
            .into_iter()
            .find(|item| item.has_parameter(RUN_ID_PARAMETER, run_id))
            .and_then(|item| item.id)
            .map(|id| Found::Queued(format!("{}queue/item/{id}/", self.base))))
    }

    /// Whether the build at `build_url` is still running, or its result.
    pub async fn build(&self, build_url: &str) -> Result<BuildState, JenkinsError> {
        const WHAT: &str = "build";
        let response = self
            .get(&format!("{}api/json", slash(build_url)), WHAT)?
            .query(&[("tree", "building,result,number")])
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        let build: BuildJson = json(checked(response, WHAT).await?, WHAT).await?;
        Ok(build.into())
    }

    /// The build's test report; `None` when it has none (404).
    pub async fn test_report(&self, build_url: &str) -> Result<Option<TestReport>, JenkinsError> {
        const WHAT: &str = "test report";
        let response = self
            .get(&format!("{}testReport/api/json", slash(build_url)), WHAT)?
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let report: TestReportJson = json(checked(response, WHAT).await?, WHAT).await?;
        Ok(Some(report.into()))
    }

    /// Asks the build to stop (`stop`, or the harder `term` and `kill` for pipelines).
    pub async fn stop(&self, build_url: &str, how: &'static str) -> Result<(), JenkinsError> {
        const WHAT: &str = "stop";
        let response = self
            .post(&format!("{}{how}", slash(build_url)), WHAT)
            .await?
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        checked(response, WHAT).await.map(drop)
    }

    /// Cancels the queue item at `item_url` (`queue/cancelItem?id=<id>`).
    pub async fn cancel_queued(&self, item_url: &str) -> Result<(), JenkinsError> {
        const WHAT: &str = "cancel queue item";
        let id = item_url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let response = self
            .post("queue/cancelItem", WHAT)
            .await?
            .query(&[("id", id.as_str())])
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        checked(response, WHAT).await.map(drop)
    }
}

/// What [`JenkinsClient::find_triggered`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Still in the queue, as this item.
    Queued(String),
    /// Started as this build.
    Build {
        /// Its number.
        number: u64,
        /// Its URL.
        url: String,
    },
}

/// The URL with a trailing `/`.
pub(super) fn slash(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

/// A `Location` made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    match reqwest::Url::parse(base).and_then(|base| base.join(location)) {
        Ok(url) => url.to_string(),
        Err(_) => location.to_owned(),
    }
}

/// The response if it succeeded (2xx or a redirect); its failure classified otherwise.
pub(super) async fn checked(
    response: Response,
    what: &'static str,
) -> Result<Response, JenkinsError> {
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.chars().take(200).collect();
    let kind = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => JenkinsErrorKind::AuthFailed,
        StatusCode::TOO_MANY_REQUESTS => JenkinsErrorKind::Unreachable,
        s if s.is_server_error() => JenkinsErrorKind::Unreachable,
        _ => JenkinsErrorKind::Refused,
    };
    Err(JenkinsError::new(
        kind,
        what,
        format!("HTTP {status}: {}", excerpt.trim()),
    ))
}

async fn json<T: DeserializeOwned>(
    response: Response,
    what: &'static str,
) -> Result<T, JenkinsError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|err| JenkinsError::transport(what, &err))?;
    serde_json::from_slice(&bytes).map_err(|err| {
        JenkinsError::new(
            JenkinsErrorKind::Refused,
            what,
            format!("unreadable JSON: {err}"),
        )
    })
}
