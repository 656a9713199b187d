//! Values that can only be built valid.
//!
//! Each type checks its invariant in `parse` and in deserialisation (`try_from = "String"`), so a
//! payload that deserialises is already valid and the domain never re-checks text.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Why a value was refused; the message names the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

pub(crate) fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue(message.into())
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `raw` and wraps it.
            pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidValue> {
                let raw: String = raw.into();
                let check: fn(&str) -> Result<(), InvalidValue> = $check;
                check(&raw)?;
                Ok(Self(raw))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(raw: String) -> Result<Self, InvalidValue> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use validated_string;

pub(crate) fn check_text(raw: &str, what: &str, max: usize) -> Result<(), InvalidValue> {
    if raw.trim().is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if raw.chars().count() > max {
        return Err(invalid(format!("{what} must be at most {max} characters")));
    }
    if raw.chars().any(|c| c == '\0') {
        return Err(invalid(format!("{what} must not contain NUL characters")));
    }
    Ok(())
}

validated_string!(
    /// A display name (machine, venv, test case): non-empty, at most 200 characters.
    MachineName,
    |raw| check_text(raw, "name", 200)
);

validated_string!(
    /// A non-empty single line of text such as a description or a command line, at most 64 KiB.
    Text,
    |raw| check_text(raw, "text", 65_536)
);

validated_string!(
    /// Why someone did something, for the audit history (a test's quarantine): not blank, at
    /// most 1000 characters.
    Reason,
    |raw| check_text(raw, "reason", 1000)
);

validated_string!(
    /// A user name: 1–64 characters of letters, digits, `.`, `_`, `-`, starting with a letter or digit.
    Username,
    |raw| {
        let ok_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        let ok_start = raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if raw.is_empty() || raw.len() > 64 || !ok_chars || !ok_start {
            return Err(invalid(
                "username must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            ));
        }
        Ok(())
    }
);

validated_string!(
    /// Who asked: a username, or a system such as `jenkins` or `executor:<name>`; at most 128
    /// printable characters.
    Actor,
    |raw| {
        if raw.is_empty() || raw.len() > 128 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid("actor must be 1-128 printable characters without spaces"));
        }
        Ok(())
    }
);

impl Actor {
    /// The executor name when the actor is `executor:<name>`.
    pub fn executor_name(&self) -> Option<&str> {
        self.0
            .strip_prefix("executor:")
            .filter(|name| !name.is_empty())
    }
}

validated_string!(
    /// A machine label: 1–64 characters of letters, digits, `.`, `_`, `-`, `:`, `=`, `/`.
    Label,
    |raw| {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '=' | '/'));
        if !ok {
            return Err(invalid("label must be 1-64 letters, digits or . _ - : = /"));
        }
        Ok(())
    }
);

validated_string!(
    /// A machine address: an IP address, a DNS name, or `local` (the executor's own host).
    Host,
    |raw| {
        if raw.parse::<IpAddr>().is_ok() || is_dns_name(raw) {
            return Ok(());
        }
        Err(invalid(format!("host {raw:?} is neither an IP address nor a DNS name")))
    }
);

validated_string!(
    /// The account used on a remote machine (`ubuntu`, `LAB\\tester`): 1–256 printable characters.
    RemoteUser,
    |raw| check_text(raw, "username", 256)
);

validated_string!(
    /// A venv's name: 1–64 letters, digits, `.`, `_`, `-`; used in its default path.
    VenvName,
    |raw| {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw != "."
            && raw != ".."
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return Err(invalid("venv name must be 1-64 letters, digits, '.', '_' or '-'"));
        }
        Ok(())
    }
);

validated_string!(
    /// A path on a machine (absolute, or relative to the remote user's home): at most 4096 characters.
    RemotePath,
    |raw| check_text(raw, "path", 4096)
);

validated_string!(
    /// A path inside a run's working directory: relative, no `..`, no empty segments.
    RelativePath,
    |raw| {
        check_text(raw, "path", 1024)?;
        let absolute = raw.starts_with('/') || raw.starts_with('\\') || raw.get(1..2) == Some(":");
        let escapes = raw.split(['/', '\\']).any(|part| part == ".." || part.is_empty());
        if absolute || escapes {
            return Err(invalid(format!("path {raw:?} must be relative, without '..' or empty segments")));
        }
        Ok(())
    }
);

validated_string!(
    /// An environment variable name: a letter or `_`, then letters, digits or `_`.
    EnvName,
    |raw| {
        let ok = raw.len() <= 128
            && raw.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(invalid(format!("environment variable name {raw:?} is not valid")));
        }
        Ok(())
    }
);

/// Names no run may set, whatever its test case allows: they change which loader, shell start-up
/// file, interpreter, module path or plugin runs before (or instead of) the test's own code, or
/// what the executor itself relies on (`PATH`, `VIRTUAL_ENV`, `HOME`, `RUNLEDGER_*`). Exact names;
/// [`PROTECTED_ENV_PREFIXES`] covers whole families.
pub const PROTECTED_ENV_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "IFS",
    "PS4",
    "CDPATH",
    "GLOBIGNORE",
    "SHELL",
    "VIRTUAL_ENV",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "GCONV_PATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    "LOCALDOMAIN",
    "NLSPATH",
    "TMPDIR",
    "COMSPEC",
    "PATHEXT",
    "PSMODULEPATH",
    "USERPROFILE",
];

/// Prefixes of the name families no run may set: the dynamic loader's (`LD_`, `DYLD_`), the
/// Python interpreter's (`PYTHON`), the allocator's hooks (`MALLOC_`), git's and runledger's own.
pub const PROTECTED_ENV_PREFIXES: &[&str] =
    &["LD_", "DYLD_", "PYTHON", "MALLOC_", "GIT_", "RUNLEDGER_"];

impl EnvName {
    /// True for a name no run may override (see [`PROTECTED_ENV_NAMES`]). Compared without
    /// regard to case, as Windows does.
    pub fn is_protected(&self) -> bool {
        let upper = self.0.to_ascii_uppercase();
        PROTECTED_ENV_NAMES.contains(&upper.as_str())
            || PROTECTED_ENV_PREFIXES
                .iter()
                .any(|prefix| upper.starts_with(prefix))
    }
}

validated_string!(
    /// A single-line value such as a pip requirement or an interpreter name.
    Line,
    |raw| {
        check_text(raw, "value", 1024)?;
        if raw.contains(['\n', '\r']) {
            return Err(invalid("value must be a single line"));
        }
        Ok(())
    }
);

validated_string!(
    /// A Python version a matrix selects venvs by: `3`, `3.11` or `3.11.7` (digits and dots).
    /// A venv matches when the version its interpreter reported is this one or starts with it
    /// and a dot (`3.11` matches `3.11.7`).
    PythonVersion,
    |raw| {
        let ok = !raw.is_empty()
            && raw.len() <= 16
            && raw.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(invalid("python version must be digits separated by dots, such as 3.11"));
        }
        Ok(())
    }
);

impl PythonVersion {
    /// True when a venv whose interpreter reported `reported` (`3.11.7`) has this version.
    pub fn matches(&self, reported: &str) -> bool {
        reported == self.0
            || reported
                .strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
    }
}

validated_string!(
    /// An SSH host key fingerprint, `SHA256:` followed by unpadded base64 (as `ssh-keygen -l` prints).
    HostKeyFingerprint,
    |raw| {
        let ok = raw.strip_prefix("SHA256:").is_some_and(|b64| {
            b64.len() == 43 && b64.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        });
        if !ok {
            return Err(invalid("host_key must be a SHA256:... fingerprint as printed by ssh-keygen -l"));
        }
        Ok(())
    }
);

impl Host {
    /// True for the special host `local`: commands run as child processes of the executor.
    pub fn is_local(&self) -> bool {
        self.0 == "local"
    }
}

fn is_dns_name(raw: &str) -> bool {
    let name = raw.strip_suffix('.').unwrap_or(raw);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A TCP port, 1–65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u16")]
pub struct Port(u16);

impl Port {
    /// The SSH default.
    pub const SSH: Port = Port(22);

    /// Checks the range and wraps it.
    pub fn parse(raw: i64) -> Result<Self, InvalidValue> {
        u16::try_from(raw)
            .ok()
            .filter(|port| *port != 0)
            .map(Self)
            .ok_or_else(|| invalid(format!("port must be between 1 and 65535, got {raw}")))
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for Port {
    fn default() -> Self {
        Self::SSH
    }
}

impl TryFrom<i64> for Port {
    type Error = InvalidValue;
    fn try_from(raw: i64) -> Result<Self, InvalidValue> {
        Self::parse(raw)
    }
}

impl From<Port> for u16 {
    fn from(port: Port) -> u16 {
        port.0
    }
}

/// A machine's operating system; decides how commands are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Os {
    /// POSIX shell, `venv/bin/python`.
    Linux,
    /// PowerShell, `venv\Scripts\python.exe`.
    Windows,
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages everything.
    Admin,
    /// Reads everything, manages own machines, cancels own runs.
    Member,
}

/// A run's status, as in contract §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a free venv.
    Queued,
    /// Holds a venv; waiting for an executor to start it.
    Assigned,
    /// An executor runs it.
    Running,
    /// Final: the tests passed.
    Passed,
    /// Final: the tests failed.
    Failed,
    /// Final: infrastructure failed (SSH, provisioning, executor loss).
    Error,
    /// Final: the run exceeded its timeout.
    TimedOut,
    /// Final: cancelled on request.
    Cancelled,
}

impl RunStatus {
    /// True for the statuses that end a run.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Passed | Self::Failed | Self::Error | Self::TimedOut | Self::Cancelled
        )
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Running => "running",
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A run group's one answer (docs/groups.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    /// A member has not ended.
    Running,
    /// Every member passed.
    Passed,
    /// A member failed or timed out, and none errored.
    Failed,
    /// A member ended in an infrastructure error that survived its retries.
    Error,
    /// The group, or one of its members, was cancelled.
    Cancelled,
}

impl GroupStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Counts from a JUnit report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestSummary {
    /// Tests that passed.
    pub passed: u32,
    /// Tests that failed an assertion.
    pub failed: u32,
    /// Tests that were skipped.
    pub skipped: u32,
    /// Tests that raised an unexpected error.
    pub errors: u32,
    /// How many of the `failed` and `errors` are of tests that were quarantined when the run
    /// ended: counted by the handler, never by the executor. A run whose only failures are
    /// quarantined ends `passed` with them counted here (absent: none, and in older events).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quarantined_failed: u32,
}

impl TestSummary {
    /// The counts of `self` and `other` together: a group's merged summary.
    pub fn merged(self, other: Self) -> Self {
        Self {
            passed: self.passed + other.passed,
            failed: self.failed + other.failed,
            skipped: self.skipped + other.skipped,
            errors: self.errors + other.errors,
            quarantined_failed: self.quarantined_failed + other.quarantined_failed,
        }
    }
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "10.0.0.1",
            "::1",
            "lab-01.example.com",
            "local",
            "a",
            "host.",
        ] {
            assert!(Host::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a.com", "a..b", "a b", "x_y.com", &"a".repeat(64)] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(Port::parse(22).map(Port::get), Ok(22));
        assert!(Port::parse(0).is_err());
        assert!(Port::parse(65_536).is_err());
        assert!(Port::parse(-1).is_err());
    }

    #[test]
    fn names_and_users() {
        assert!(MachineName::parse("  ").is_err());
        assert!(MachineName::parse("x".repeat(201)).is_err());
        assert!(MachineName::parse("a\0b").is_err());
        assert!(Reason::parse("flaky on Windows, see #12").is_ok());
        assert!(Reason::parse(" ").is_err());
        assert!(Reason::parse("x".repeat(1000)).is_ok());
        assert!(Reason::parse("x".repeat(1001)).is_err());
        assert!(Username::parse("alice.b-2").is_ok());
        assert!(Username::parse("-alice").is_err());
        assert!(Username::parse("executor:x").is_err());
        assert_eq!(
            Actor::parse("executor:e1")
                .ok()
                .as_ref()
                .and_then(Actor::executor_name),
            Some("e1")
        );
        assert!(Actor::parse("two words").is_err());
        assert!(Label::parse("gpu=a100").is_ok());
        assert!(Label::parse("bad label").is_err());
    }

    #[test]
    fn paths_and_fingerprints() {
        assert!(RelativePath::parse("tests/test_a.py").is_ok());
        for bad in ["/etc/passwd", "../x", "a//b", "C:\\x", "a/../b"] {
            assert!(RelativePath::parse(bad).is_err(), "{bad}");
        }
        let fp = format!("SHA256:{}", "A".repeat(43));
        assert!(HostKeyFingerprint::parse(fp).is_ok());
        assert!(HostKeyFingerprint::parse("MD5:aa").is_err());
        assert!(EnvName::parse("PYTHONPATH").is_ok());
        assert!(EnvName::parse("1X").is_err());
        for name in [
            "LD_PRELOAD",
            "BASH_ENV",
            "PATH",
            "PYTHONPATH",
            "path",
            "RUNLEDGER_RUN_ID",
        ] {
            assert!(EnvName::parse(name).expect("name").is_protected(), "{name}");
        }
        assert!(!EnvName::parse("TARGET_URL").expect("name").is_protected());
        assert!(Line::parse("pytest>=8\nrm").is_err());
        assert!(VenvName::parse("..").is_err());
    }

    #[test]
    fn summaries_without_quarantined_failures_keep_their_old_shape() {
        let old = r#"{"passed":3,"failed":1,"skipped":0,"errors":0}"#;
        let summary: TestSummary = serde_json::from_str(old).expect("old summary");
        assert_eq!(summary.quarantined_failed, 0);
        assert_eq!(serde_json::to_string(&summary).expect("json"), old);
        let quarantined = TestSummary {
            quarantined_failed: 1,
            ..summary
        };
        let json = serde_json::to_value(quarantined).expect("json");
        assert_eq!(json["quarantined_failed"], 1);
    }

    #[test]
    fn values_deserialise_only_when_valid() {
        assert!(serde_json::from_str::<Port>("70000").is_err());
        assert!(serde_json::from_str::<Host>("\"a b\"").is_err());
        assert_eq!(
            serde_json::from_str::<Os>("\"windows\"").ok(),
            Some(Os::Windows)
        );
        assert!(serde_json::from_str::<Os>("\"beos\"").is_err());
    }
}
