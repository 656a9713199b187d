//! OpenAPI schemas of the values that are checked by hand (`parse`) rather than by their shape,
//! so that an API document built from the command types states the same bounds the handler
//! enforces: lengths, patterns, ranges. Rules a pattern cannot say (an IP address or a DNS name,
//! a path without `..`) are left to the description.

use crate::ids::{CommandId, EventId, GroupId, MachineId, RunId, TestCaseId, TestId, VenvId};
use crate::jenkins::{JenkinsJobName, JenkinsParameterName, JenkinsUrl};
use crate::secret::{OutgoingSecret, SecretString};
use crate::values::{
    EnvName, Host, HostKeyFingerprint, Label, Line, MachineName, Port, PythonVersion, Reason,
    RelativePath, RemotePath, RemoteUser, Text, Username, VenvName,
};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// What a string value's schema states.
struct StringRule {
    description: &'static str,
    min: usize,
    max: usize,
    pattern: Option<&'static str>,
    format: Option<KnownFormat>,
}

impl StringRule {
    const fn new(description: &'static str, max: usize) -> Self {
        Self {
            description,
            min: 1,
            max,
            pattern: None,
            format: None,
        }
    }

    const fn pattern(self, pattern: &'static str) -> Self {
        Self {
            pattern: Some(pattern),
            ..self
        }
    }

    fn schema(self) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(self.description))
            .min_length(Some(self.min))
            .max_length(Some(self.max))
            .pattern(self.pattern)
            .format(self.format.map(SchemaFormat::KnownFormat))
            .into()
    }
}

macro_rules! string_schemas {
    ($($name:ty => $rule:expr;)*) => {
        $(
            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    $rule.schema()
                }
            }

            impl utoipa::ToSchema for $name {}
        )*
    };
}

/// A relative path as [`RelativePath`] takes it: not starting with `/`, `\\` or a drive (`C:`),
/// no empty or `..` segment, no NUL, not blank.
const RELATIVE_PATH: &str = r"^(?![\s\S]:)(?![\s\S]*[/\\]$)(?![\s\S]*[/\\]{2})(?![\s\S]*(^|[/\\])\.\.([/\\]|$))(?=[\s\S]*[^\s\u0000])[^/\\\u0000][^\u0000]*$";

/// A Jenkins job's full name as [`JenkinsJobName`] takes it: `/`-separated parts, none blank,
/// `.` or `..`, and no control character.
const JENKINS_JOB: &str = r"^(?![\s\S]*[\u0000-\u001f\u007f-\u009f])(?!\.\.?(/|$))[^/]*[^\s/][^/]*(/(?!\.\.?(/|$))[^/]*[^\s/][^/]*)*$";

/// A JSON Schema pattern of text that is not blank and holds no NUL character (the rules of
/// the validated text values).
const NOT_BLANK: &str = r"^[^\u0000]*[^\s\u0000][^\u0000]*$";

string_schemas! {
    MachineName => StringRule::new("A display name: not blank, at most 200 characters.", 200)
        .pattern(NOT_BLANK);
    Text => StringRule::new("Text: not blank, at most 65536 characters.", 65_536)
        .pattern(NOT_BLANK);
    Reason => StringRule::new("Why, for the audit history: not blank, at most 1000 characters.", 1000)
        .pattern(NOT_BLANK);
    Username => StringRule::new(
        "A user name: letters, digits, '.', '_' or '-', starting with a letter or digit.",
        64,
    )
    .pattern("^[A-Za-z0-9][A-Za-z0-9._-]*$");
    Label => StringRule::new("A machine label: letters, digits or . _ - : = /", 64)
        .pattern("^[A-Za-z0-9._:=/-]+$");
    Host => StringRule::new("An IP address, a DNS name, or `local` (the executor's own host).", 254);
    RemoteUser => StringRule::new("The account on the machine (`ubuntu`, `LAB\\tester`).", 256)
        .pattern(NOT_BLANK);
    VenvName => StringRule::new("A venv's name: letters, digits, '.', '_' or '-'.", 64)
        .pattern(r"^(?!\.\.?$)[A-Za-z0-9._-]+$");
    RemotePath => StringRule::new(
        "A path on the machine: absolute, or relative to the remote user's home.",
        4096,
    )
    .pattern(NOT_BLANK);
    RelativePath => StringRule::new(
        "A path inside the run's working directory: relative, without '..' or empty segments.",
        1024,
    )
    .pattern(RELATIVE_PATH);
    EnvName => StringRule::new("An environment variable name.", 128)
        .pattern("^[A-Za-z_][A-Za-z0-9_]*$");
    Line => StringRule::new("A single line (a pip requirement, an interpreter).", 1024)
        .pattern(r"^[^\r\n\u0000]*[^\s\u0000][^\r\n\u0000]*$");
    PythonVersion => StringRule::new("A Python version: digits separated by dots (`3.11`).", 16)
        .pattern(r"^[0-9]+(\.[0-9]+)*$");
    HostKeyFingerprint => StringRule::new("An SSH host key fingerprint as `ssh-keygen -l` prints it.", 50)
        .pattern("^SHA256:[A-Za-z0-9+/]{43}$");
    JenkinsUrl => StringRule::new(
        "A Jenkins server's http(s) URL, without query, fragment or credentials.",
        2048,
    )
    .pattern("^[Hh][Tt][Tt][Pp][Ss]?://[^?#]+$");
    JenkinsJobName => StringRule::new("A job's full name, its folders joined by '/' (`team/nightly`).", 1024)
        .pattern(JENKINS_JOB);
    JenkinsParameterName => StringRule::new("A build parameter's name (not RUNLEDGER_RUN_ID).", 128)
        .pattern("^[A-Za-z0-9_.-]+$");
    SecretString => StringRule {
        min: 0,
        format: Some(KnownFormat::Password),
        ..StringRule::new("A secret in clear text, sealed or hashed by the handler.", 65_536)
    };
    OutgoingSecret => StringRule {
        min: 0,
        format: Some(KnownFormat::Password),
        ..StringRule::new("A secret in clear text, sealed or hashed by the handler.", 65_536)
    };
}

macro_rules! uuid_schemas {
    ($($name:ty),*) => {
        $(
            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                        .into()
                }
            }

            impl utoipa::ToSchema for $name {}
        )*
    };
}

uuid_schemas!(
    CommandId, EventId, RunId, GroupId, MachineId, VenvId, TestCaseId, TestId
);

impl utoipa::PartialSchema for Port {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some("A TCP port."))
            .minimum(Some(1))
            .maximum(Some(65_535))
            .into()
    }
}

impl utoipa::ToSchema for Port {}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    fn json<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap_or_default()
    }

    #[test]
    fn validated_values_state_their_bounds() {
        let username = json::<Username>();
        assert_eq!(username["maxLength"], 64);
        assert_eq!(username["pattern"], "^[A-Za-z0-9][A-Za-z0-9._-]*$");
        let port = json::<Port>();
        assert_eq!(
            (port["minimum"].as_f64(), port["maximum"].as_f64()),
            (Some(1.0), Some(65_535.0))
        );
        assert_eq!(json::<RunId>()["format"], "uuid");
        assert_eq!(json::<OutgoingSecret>()["format"], "password");
    }
}
