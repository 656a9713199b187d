//! Test cases that run as Jenkins jobs: the job a test case names, and the build a run follows.
//!
//! Instead of a command run inside a venv, a test case may name a Jenkins job. Its runs need no
//! machine and no venv: an executor triggers the parameterised build through Jenkins' Remote
//! Access API, follows the queue item to the build, streams the console text as the run's output
//! and maps the build's result to the run's status (see `docs/executors.md`).

use crate::secret::SealedSecret;
use crate::values::{InvalidValue, check_text, invalid, validated_string};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The build parameter runledger adds to every build it triggers, so that a build started just
/// before an executor crashed can still be found (declare it as a string parameter of the job).
pub const RUN_ID_PARAMETER: &str = "RUNLEDGER_RUN_ID";

validated_string!(
    /// A Jenkins server's base URL: `http` or `https`, with a host, without query, fragment or
    /// credentials (those go in `credentials`, sealed).
    JenkinsUrl,
    |raw| {
        check_text(raw, "url", 2048)?;
        let url = url::Url::parse(raw).map_err(|err| invalid(format!("url {raw:?}: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(format!("url {raw:?} must be an http or https URL with a host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(format!("url {raw:?} must not have a query or a fragment")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("url must not carry credentials: give them in credentials"));
        }
        Ok(())
    }
);

validated_string!(
    /// A job's full name: its folders and its name joined by `/` (`team/nightly`), no empty
    /// segment, no `.` or `..` segment.
    JenkinsJobName,
    |raw| {
        check_text(raw, "job", 1024)?;
        let bad = raw
            .split('/')
            .any(|part| part.trim().is_empty() || part == "." || part == "..");
        if bad || raw.chars().any(char::is_control) {
            return Err(invalid(format!(
                "job {raw:?} must be folder/.../name without empty, '.' or '..' parts"
            )));
        }
        Ok(())
    }
);

validated_string!(
    /// A build parameter's name: 1–128 letters, digits, `_`, `-`, `.`; not [`RUN_ID_PARAMETER`].
    JenkinsParameterName,
    |raw| {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(invalid(format!("parameter name {raw:?} must be 1-128 letters, digits, '_', '-' or '.'")));
        }
        if raw == RUN_ID_PARAMETER {
            return Err(invalid(format!("parameter {RUN_ID_PARAMETER} is set by runledger")));
        }
        Ok(())
    }
);

impl JenkinsUrl {
    /// The URL with exactly one trailing `/`, ready to have paths appended.
    pub fn base(&self) -> String {
        format!("{}/", self.as_str().trim_end_matches('/'))
    }

    /// True when `other` is an absolute `http`/`https` URL without credentials on this server's
    /// origin: the same scheme, host and port once both are normalised (host case, IP address
    /// forms, default ports). The server's API token goes only to such URLs.
    pub fn same_origin(&self, other: &str) -> bool {
        same_origin(self.as_str(), other)
    }
}

/// True when `url` is an `http`/`https` URL without credentials on `base`'s origin.
pub fn same_origin(base: &str, url: &str) -> bool {
    let (Ok(base), Ok(url)) = (url::Url::parse(base), url::Url::parse(url)) else {
        return false;
    };
    let web = |u: &url::Url| matches!(u.scheme(), "http" | "https");
    let clean = url.username().is_empty() && url.password().is_none();
    web(&base) && web(&url) && clean && base.origin() == url.origin()
}

impl JenkinsJobName {
    /// The job's path below the server's URL: `job/<folder>/job/<name>/`, each part
    /// percent-encoded.
    pub fn url_path(&self) -> String {
        let mut path = String::new();
        for part in self.as_str().split('/') {
            path.push_str("job/");
            path.extend(
                url::form_urlencoded::byte_serialize(part.as_bytes()).map(|piece| {
                    // `byte_serialize` writes spaces as `+`, which a path does not decode.
                    if piece == "+" { "%20" } else { piece }
                }),
            );
            path.push('/');
        }
        path
    }
}

/// The Jenkins job a test case runs. `S` is a clear secret on the way in, a sealed one once
/// protected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JenkinsJob<S> {
    /// The server, e.g. `https://jenkins.lab.example/`.
    pub url: JenkinsUrl,
    /// The job's full name, e.g. `team/nightly`.
    pub job: JenkinsJobName,
    /// Build parameters; the run's `env` overrides entries of the same name.
    #[serde(default)]
    pub parameters: BTreeMap<JenkinsParameterName, String>,
    /// User and API token; absent for a server that allows anonymous builds.
    #[serde(default = "no_credentials", skip_serializing_if = "Option::is_none")]
    pub credentials: Option<JenkinsCredentials<S>>,
}

fn no_credentials<S>() -> Option<JenkinsCredentials<S>> {
    None
}

/// A Jenkins user and one of its API tokens (Jenkins: user → Configure → API Token).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JenkinsCredentials<S> {
    /// The Jenkins user.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub username: String,
    /// The API token.
    pub api_token: S,
}

impl<S> fmt::Debug for JenkinsCredentials<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JenkinsCredentials")
            .field("username", &self.username)
            .field("api_token", &"[redacted]")
            .finish()
    }
}

impl<S> JenkinsJob<S> {
    /// The same job with its API token mapped by `seal` (used to seal or open it).
    pub fn map_secret<T, E>(
        self,
        seal: impl FnOnce(S) -> Result<T, E>,
    ) -> Result<JenkinsJob<T>, E> {
        let credentials = match self.credentials {
            Some(c) => Some(JenkinsCredentials {
                username: c.username,
                api_token: seal(c.api_token)?,
            }),
            None => None,
        };
        Ok(JenkinsJob {
            url: self.url,
            job: self.job,
            parameters: self.parameters,
            credentials,
        })
    }

    /// Checks what serde cannot: a credentials user that is not empty.
    pub fn check(&self) -> Result<(), InvalidValue> {
        if let Some(credentials) = &self.credentials {
            check_text(&credentials.username, "credentials.username", 256)?;
        }
        Ok(())
    }
}

/// The job as anyone may see it: no token, only whether one is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JenkinsJobView {
    /// The server.
    pub url: String,
    /// The job's full name.
    pub job: String,
    /// Build parameters.
    pub parameters: BTreeMap<String, String>,
    /// The Jenkins user, if credentials are stored.
    pub username: Option<String>,
}

impl From<&JenkinsJob<SealedSecret>> for JenkinsJobView {
    fn from(job: &JenkinsJob<SealedSecret>) -> Self {
        Self {
            url: job.url.as_str().to_owned(),
            job: job.job.as_str().to_owned(),
            parameters: job
                .parameters
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                .collect(),
            username: job.credentials.as_ref().map(|c| c.username.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_without_credentials() {
        assert!(JenkinsUrl::parse("https://jenkins.lab.example/").is_ok());
        assert!(JenkinsUrl::parse("http://127.0.0.1:8080/jenkins").is_ok());
        for bad in [
            "ftp://jenkins/",
            "https://user:pw@jenkins/",
            "https://jenkins/?a=1",
            "jenkins",
            "",
        ] {
            assert!(JenkinsUrl::parse(bad).is_err(), "{bad}");
        }
        let url = JenkinsUrl::parse("http://127.0.0.1:8080/jenkins//").expect("valid");
        assert_eq!(url.base(), "http://127.0.0.1:8080/jenkins/");
    }

    #[test]
    fn origins_compare_scheme_host_and_port_after_normalisation() {
        let url = JenkinsUrl::parse("https://Jenkins.Lab.example/ci/").expect("valid");
        for same in [
            "https://jenkins.lab.example/ci/queue/item/4/",
            "https://jenkins.lab.example:443/job/a/7/",
            "HTTPS://JENKINS.LAB.EXAMPLE/elsewhere",
        ] {
            assert!(url.same_origin(same), "{same}");
        }
        for other in [
            "http://jenkins.lab.example/ci/queue/item/4/",
            "https://jenkins.lab.example:8443/ci/",
            "https://jenkins.lab.example.evil/ci/",
            "https://evil.example/ci/",
            "https://user:pw@jenkins.lab.example/ci/",
            "ftp://jenkins.lab.example/",
            "/ci/queue/item/4/",
            "",
        ] {
            assert!(!url.same_origin(other), "{other}");
        }
        let local = JenkinsUrl::parse("http://127.0.0.1:80/").expect("valid");
        assert!(local.same_origin("http://127.0.0.1/job/a/1/"));
        assert!(local.same_origin("http://2130706433/job/a/1/"));
        assert!(!local.same_origin("http://127.0.0.1:8080/job/a/1/"));
    }

    #[test]
    fn job_names_become_encoded_paths() {
        let job = JenkinsJobName::parse("team/nightly run").expect("valid");
        assert_eq!(job.url_path(), "job/team/job/nightly%20run/");
        for bad in ["", "a//b", "/a", "a/..", "a/ /b"] {
            assert!(JenkinsJobName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_run_id_parameter_is_reserved() {
        assert!(JenkinsParameterName::parse("BRANCH").is_ok());
        assert!(JenkinsParameterName::parse(RUN_ID_PARAMETER).is_err());
        assert!(JenkinsParameterName::parse("a b").is_err());
    }

    #[test]
    fn the_api_token_never_prints() {
        let credentials = JenkinsCredentials {
            username: "ci".to_owned(),
            api_token: "11aa22bb".to_owned(),
        };
        assert!(!format!("{credentials:?}").contains("11aa22bb"));
    }
}
