//! Payloads that manage the lab: users, machines, venvs and test cases.

use super::InvalidPayload;
use crate::ids::{MachineId, TestCaseId, VenvId};
use crate::jenkins::JenkinsJob;
use crate::secret::{SealedSecret, SecretString};
use crate::values::{
    EnvName, Host, HostKeyFingerprint, Label, Line, MachineName, Os, Port, RelativePath,
    RemotePath, RemoteUser, Role, Text, Username, VenvName,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// `register_user`: `P` is the clear password on the way in, its hash once protected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterUser<P> {
    /// Login name; also the stream key `user-<username>`.
    pub username: Username,
    /// `admin` or `member`.
    pub role: Role,
    /// Clear text on the way in, argon2 hash once protected.
    #[schema(schema_with = super::user_password_schema)]
    pub password: P,
}

impl RegisterUser<SecretString> {
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        let length = self.password.expose().chars().count();
        if !(8..=1024).contains(&length) {
            return Err(InvalidPayload(
                "payload.password: password must be 8-1024 characters".into(),
            ));
        }
        Ok(self)
    }
}

/// `register_machine`: `S` is a clear secret on the way in, a sealed one once protected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterMachine<S> {
    /// The new machine's id.
    pub machine_id: MachineId,
    /// Display name.
    pub name: MachineName,
    /// IP, DNS name, or `local`.
    pub host: Host,
    /// SSH port, default 22.
    #[serde(default)]
    pub port: Port,
    /// Decides how commands are rendered; default `linux`.
    #[serde(default = "linux")]
    pub os: Os,
    /// Remote account.
    pub username: RemoteUser,
    /// SSH password.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub password: Option<S>,
    /// OpenSSH private key.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub private_key: Option<S>,
    /// Pinned host key; absent: trusted on first use, then pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<HostKeyFingerprint>,
    /// Labels runs may select the machine by.
    #[serde(default)]
    pub labels: BTreeSet<Label>,
}

fn linux() -> Os {
    Os::Linux
}

fn none<S>() -> Option<S> {
    None
}

impl<S> RegisterMachine<S> {
    /// Replaces each secret with `seal(secret)`.
    pub fn map_secrets<T, E>(
        self,
        mut seal: impl FnMut(S) -> Result<T, E>,
    ) -> Result<RegisterMachine<T>, E> {
        Ok(RegisterMachine {
            password: self.password.map(&mut seal).transpose()?,
            private_key: self.private_key.map(&mut seal).transpose()?,
            machine_id: self.machine_id,
            name: self.name,
            host: self.host,
            port: self.port,
            os: self.os,
            username: self.username,
            host_key: self.host_key,
            labels: self.labels,
        })
    }
}

impl RegisterMachine<SecretString> {
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        if self.password.is_none() && self.private_key.is_none() && !self.host.is_local() {
            return Err(InvalidPayload(
                "payload: a machine needs a password or a private_key (unless host is \"local\")"
                    .into(),
            ));
        }
        if let Some(key) = &self.private_key {
            check_private_key(key)?;
        }
        Ok(self)
    }
}

impl UpdateMachine<SecretString> {
    /// A new private key must be one, as for a new machine.
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        if let Some(key) = &self.private_key {
            check_private_key(key)?;
        }
        Ok(self)
    }
}

fn check_private_key(key: &SecretString) -> Result<(), InvalidPayload> {
    let text = key.expose().trim();
    if text.starts_with("-----BEGIN ") && text.contains("PRIVATE KEY-----") {
        return Ok(());
    }
    Err(InvalidPayload(
        "payload.private_key: expected a private key in OpenSSH (PEM-armoured) format".into(),
    ))
}

/// `update_machine`: any field of `register_machine`; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMachine<S> {
    /// The machine to change.
    pub machine_id: MachineId,
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<MachineName>,
    /// New address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// New SSH port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// New operating system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Os>,
    /// New remote account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<RemoteUser>,
    /// New password.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub password: Option<S>,
    /// New private key.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub private_key: Option<S>,
    /// New pinned host key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<HostKeyFingerprint>,
    /// New labels (replace the old set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeSet<Label>>,
}

impl<S> UpdateMachine<S> {
    /// An update of `machine_id` that changes nothing yet; set the fields to change.
    pub fn new(machine_id: MachineId) -> Self {
        Self {
            machine_id,
            name: None,
            host: None,
            port: None,
            os: None,
            username: None,
            password: None,
            private_key: None,
            host_key: None,
            labels: None,
        }
    }

    /// Replaces each secret with `seal(secret)`.
    pub fn map_secrets<T, E>(
        self,
        mut seal: impl FnMut(S) -> Result<T, E>,
    ) -> Result<UpdateMachine<T>, E> {
        Ok(UpdateMachine {
            password: self.password.map(&mut seal).transpose()?,
            private_key: self.private_key.map(&mut seal).transpose()?,
            machine_id: self.machine_id,
            name: self.name,
            host: self.host,
            port: self.port,
            os: self.os,
            username: self.username,
            host_key: self.host_key,
            labels: self.labels,
        })
    }
}

/// `retire_machine`: no new runs go to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireMachine {
    /// The machine to retire.
    pub machine_id: MachineId,
}

/// `add_venv`: a virtualenv the executor provisions on a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddVenv {
    /// The new venv's id.
    pub venv_id: VenvId,
    /// The machine it lives on.
    pub machine_id: MachineId,
    /// Name; the default path is `~/.runledger/venvs/<name>`.
    pub name: VenvName,
    /// Where on the machine; default under `~/.runledger/venvs/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<RemotePath>,
    /// Interpreter that creates it; default `python3`.
    #[serde(default = "python3")]
    pub python: Line,
    /// pip requirement strings installed into it.
    #[serde(default)]
    pub requirements: Vec<Line>,
}

fn python3() -> Line {
    Line::parse("python3").unwrap_or_else(|_| unreachable!("python3 is a valid line"))
}

/// `remove_venv`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveVenv {
    /// The venv to remove.
    pub venv_id: VenvId,
}

/// A file copied into a run's working directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Relative path inside the working directory.
    pub path: RelativePath,
    /// Text content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Binary content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
}

/// `define_test_case`: a command run inside a venv, or a Jenkins job (exactly one of the two).
/// `S` is the Jenkins API token: clear on the way in, sealed once protected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineTestCase<S = SealedSecret> {
    /// The new test case's id.
    pub test_case_id: TestCaseId,
    /// Display name.
    pub name: MachineName,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Command line run inside the venv (absent for a Jenkins job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Text>,
    /// The Jenkins job its runs trigger instead of a command.
    #[serde(default = "no_job", skip_serializing_if = "Option::is_none")]
    pub jenkins: Option<JenkinsJob<S>>,
    /// Files copied into the working directory.
    #[serde(default)]
    pub files: Vec<TestFile>,
    /// Environment for the command.
    #[serde(default)]
    pub env: BTreeMap<EnvName, String>,
    /// The names a run's `env` may set (for a Jenkins job: the build parameters a run may
    /// override); default none. Protected names ([`EnvName::is_protected`]) are refused here.
    #[serde(default)]
    pub env_overridable: BTreeSet<EnvName>,
    /// Seconds before the run is stopped as `timed_out`; default 3600.
    #[serde(default = "default_timeout")]
    #[schema(minimum = 1, maximum = 604_800)]
    pub timeout_s: u32,
    /// Path of the JUnit XML report the command writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit_xml: Option<RelativePath>,
    /// How often an infrastructure error is retried; default 0.
    #[serde(default)]
    #[schema(maximum = 10)]
    pub retries: u32,
    /// Most bytes of output a run records; past it output is dropped, with a note in the
    /// output saying how much (the run goes on). Default [`DEFAULT_MAX_OUTPUT_BYTES`].
    #[serde(default = "default_max_output_bytes")]
    #[schema(minimum = 1024, maximum = 10_737_418_240_u64)]
    pub max_output_bytes: u64,
}

/// A run's output limit unless its test case says otherwise: 100 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 100 * 1024 * 1024;
/// The largest output limit a test case may set: 10 GiB.
pub const MAX_MAX_OUTPUT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// [`DEFAULT_MAX_OUTPUT_BYTES`], for serde.
pub fn default_max_output_bytes() -> u64 {
    DEFAULT_MAX_OUTPUT_BYTES
}

fn no_job<S>() -> Option<JenkinsJob<S>> {
    None
}

impl DefineTestCase<SecretString> {
    /// The same test case with its Jenkins API token (if any) mapped by `seal`.
    pub fn map_secret<T, E>(
        self,
        seal: impl FnOnce(SecretString) -> Result<T, E>,
    ) -> Result<DefineTestCase<T>, E> {
        let jenkins = match self.jenkins {
            Some(job) => Some(job.map_secret(seal)?),
            None => None,
        };
        Ok(DefineTestCase {
            test_case_id: self.test_case_id,
            name: self.name,
            description: self.description,
            command: self.command,
            jenkins,
            files: self.files,
            env: self.env,
            env_overridable: self.env_overridable,
            timeout_s: self.timeout_s,
            junit_xml: self.junit_xml,
            retries: self.retries,
            max_output_bytes: self.max_output_bytes,
        })
    }
}

fn default_timeout() -> u32 {
    3600
}

/// Longest allowed timeout: one week.
pub const MAX_TIMEOUT_S: u32 = 7 * 24 * 3600;
/// Most retries a test case may ask for.
pub const MAX_RETRIES: u32 = 10;

impl DefineTestCase<SecretString> {
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        if self.timeout_s == 0 || self.timeout_s > MAX_TIMEOUT_S {
            return Err(InvalidPayload(format!(
                "payload.timeout_s: must be between 1 and {MAX_TIMEOUT_S}"
            )));
        }
        if self.retries > MAX_RETRIES {
            return Err(InvalidPayload(format!(
                "payload.retries: must be at most {MAX_RETRIES}"
            )));
        }
        if !(1024..=MAX_MAX_OUTPUT_BYTES).contains(&self.max_output_bytes) {
            return Err(InvalidPayload(format!(
                "payload.max_output_bytes: must be between 1024 and {MAX_MAX_OUTPUT_BYTES}"
            )));
        }
        if let Some(name) = self.env_overridable.iter().find(|name| name.is_protected()) {
            return Err(InvalidPayload(format!(
                "payload.env_overridable: {name} can never be set by a run (it changes which \
                 loader, shell or interpreter code runs)"
            )));
        }
        for (index, file) in self.files.iter().enumerate() {
            if file.content.is_some() == file.content_base64.is_some() {
                return Err(InvalidPayload(format!(
                    "payload.files[{index}]: give exactly one of content and content_base64"
                )));
            }
        }
        match &self.jenkins {
            None if self.command.is_none() => Err(InvalidPayload(
                "payload: give a command (run inside a venv) or a jenkins job".into(),
            )),
            None => Ok(self),
            Some(_) if self.command.is_some() => Err(InvalidPayload(
                "payload: give either a command or a jenkins job, not both".into(),
            )),
            Some(_) if !self.files.is_empty() || !self.env.is_empty() || self.junit_xml.is_some() => {
                Err(InvalidPayload(
                    "payload.jenkins: a Jenkins job takes no files, env or junit_xml (use jenkins.parameters; Jenkins' own test report is read)".into(),
                ))
            }
            Some(job) => match job.check() {
                Ok(()) => Ok(self),
                Err(err) => Err(InvalidPayload(format!("payload.jenkins.{err}"))),
            },
        }
    }
}
