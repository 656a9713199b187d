//! Commands: what callers ask for. Each payload type deserialises only when valid.
//!
//! Five commands carry secrets. They arrive as [`Incoming`] with clear-text
//! [`SecretString`]s; the handler seals or hashes them ([`Incoming::protect`]) before the domain
//! ever sees the [`Command`], so no decided event can hold a secret in clear.

mod group;
mod lab;
mod quarantine;
mod report;
mod run;
mod users;

pub use group::*;
pub use lab::*;
pub use quarantine::*;
pub use report::*;
pub use run::*;
pub use users::*;

use crate::secret::{OutgoingSecret, PasswordHash, SealedSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A command payload a caller sends: its type on the wire comes from its Rust type, so a sender
/// takes `&StartRun { .. }` and cannot name the wrong type. Payloads with secrets are sent with
/// [`OutgoingSecret`]s, the one secret type that serialises.
pub trait CommandPayload: Serialize {
    /// The command's type: the envelope's `type` and the subject's last token.
    const TYPE: CommandType;
}

macro_rules! command_payloads {
    ($($payload:ty => $variant:ident),* $(,)?) => {
        $(
            impl CommandPayload for $payload {
                const TYPE: CommandType = CommandType::$variant;
            }
        )*
    };
}

command_payloads! {
    RegisterUser<OutgoingSecret> => RegisterUser,
    RegisterMachine<OutgoingSecret> => RegisterMachine,
    UpdateMachine<OutgoingSecret> => UpdateMachine,
    RetireMachine => RetireMachine,
    AddVenv => AddVenv,
    RemoveVenv => RemoveVenv,
    DefineTestCase<OutgoingSecret> => DefineTestCase,
    StartRun => StartRun,
    CancelRun => CancelRun,
    ReportRunStarted => ReportRunStarted,
    ReportRunOutput => ReportRunOutput,
    ReportRunFinished => ReportRunFinished,
    ReportRunTests => ReportRunTests,
    ReportVenvProvisioned => ReportVenvProvisioned,
    ReportVenvProvisioningFailed => ReportVenvProvisioningFailed,
    ReportHostKey => ReportHostKey,
    ReportJenkinsQueued => ReportJenkinsQueued,
    ReportJenkinsBuild => ReportJenkinsBuild,
    ExpireExecutorLease => ExpireExecutorLease,
    DisableUser => DisableUser,
    ChangePassword<OutgoingSecret> => ChangePassword,
    RevokeTokens => RevokeTokens,
    QuarantineTest => QuarantineTest,
    ReleaseTest => ReleaseTest,
    LapseQuarantine => LapseQuarantine,
    StartGroup => StartGroup,
    CancelGroup => CancelGroup,
}

/// A validated command whose secrets are already sealed or hashed: the domain's input.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `register_user`
    RegisterUser(RegisterUser<PasswordHash>),
    /// `register_machine`
    RegisterMachine(RegisterMachine<SealedSecret>),
    /// `update_machine`
    UpdateMachine(UpdateMachine<SealedSecret>),
    /// `retire_machine`
    RetireMachine(RetireMachine),
    /// `add_venv`
    AddVenv(AddVenv),
    /// `remove_venv`
    RemoveVenv(RemoveVenv),
    /// `define_test_case`
    DefineTestCase(DefineTestCase),
    /// `start_run`
    StartRun(StartRun),
    /// `cancel_run`
    CancelRun(CancelRun),
    /// `report_run_started` (executor)
    ReportRunStarted(ReportRunStarted),
    /// `report_run_output` (executor)
    ReportRunOutput(ReportRunOutput),
    /// `report_run_finished` (executor)
    ReportRunFinished(ReportRunFinished),
    /// `report_run_tests` (executor)
    ReportRunTests(ReportRunTests),
    /// `report_venv_provisioned` (executor)
    ReportVenvProvisioned(ReportVenvProvisioned),
    /// `report_venv_provisioning_failed` (executor)
    ReportVenvProvisioningFailed(ReportVenvProvisioningFailed),
    /// `report_host_key` (executor)
    ReportHostKey(ReportHostKey),
    /// `report_jenkins_queued` (executor)
    ReportJenkinsQueued(ReportJenkinsQueued),
    /// `report_jenkins_build` (executor)
    ReportJenkinsBuild(ReportJenkinsBuild),
    /// `expire_executor_lease` (the handler's lease watch)
    ExpireExecutorLease(ExpireExecutorLease),
    /// `disable_user`
    DisableUser(DisableUser),
    /// `change_password`
    ChangePassword(ChangePassword<PasswordHash>),
    /// `revoke_tokens`
    RevokeTokens(RevokeTokens),
    /// `quarantine_test`
    QuarantineTest(QuarantineTest),
    /// `release_test`
    ReleaseTest(ReleaseTest),
    /// `lapse_quarantine` (the handler's quarantine watch)
    LapseQuarantine(LapseQuarantine),
    /// `start_group`
    StartGroup(StartGroup),
    /// `cancel_group`
    CancelGroup(CancelGroup),
}

/// A parsed command before its secrets are protected.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// Carries no secret; ready for the domain.
    Ready(Command),
    /// `register_user` with the clear-text password.
    RegisterUser(RegisterUser<SecretString>),
    /// `register_machine` with clear-text credentials.
    RegisterMachine(RegisterMachine<SecretString>),
    /// `update_machine` with clear-text credentials.
    UpdateMachine(UpdateMachine<SecretString>),
    /// `define_test_case`, with a Jenkins job's clear-text API token.
    DefineTestCase(DefineTestCase<SecretString>),
    /// `change_password` with the clear-text password.
    ChangePassword(ChangePassword<SecretString>),
}

/// Turns clear-text secrets into storable ones; implemented by the secrets crate.
pub trait Protector {
    /// Why protecting failed.
    type Error;
    /// Encrypts a machine credential.
    fn seal(&self, secret: &SecretString) -> Result<SealedSecret, Self::Error>;
    /// Hashes a user's password.
    fn hash_password(&self, password: &SecretString) -> Result<PasswordHash, Self::Error>;
}

impl Incoming {
    /// Seals or hashes every secret, giving the command the domain decides on.
    pub fn protect<P: Protector>(self, protector: &P) -> Result<Command, P::Error> {
        Ok(match self {
            Self::Ready(command) => command,
            Self::RegisterUser(c) => Command::RegisterUser(RegisterUser {
                password: protector.hash_password(&c.password)?,
                username: c.username,
                role: c.role,
            }),
            Self::RegisterMachine(c) => {
                Command::RegisterMachine(c.map_secrets(|s| protector.seal(&s))?)
            }
            Self::UpdateMachine(c) => {
                Command::UpdateMachine(c.map_secrets(|s| protector.seal(&s))?)
            }
            Self::DefineTestCase(c) => {
                Command::DefineTestCase(c.map_secret(|s| protector.seal(&s))?)
            }
            Self::ChangePassword(c) => Command::ChangePassword(ChangePassword {
                password: protector.hash_password(&c.password)?,
                username: c.username,
            }),
        })
    }

    /// The wire name of the command type.
    pub fn command_type(&self) -> CommandType {
        match self {
            Self::Ready(command) => command.command_type(),
            Self::RegisterUser(_) => CommandType::RegisterUser,
            Self::RegisterMachine(_) => CommandType::RegisterMachine,
            Self::UpdateMachine(_) => CommandType::UpdateMachine,
            Self::DefineTestCase(_) => CommandType::DefineTestCase,
            Self::ChangePassword(_) => CommandType::ChangePassword,
        }
    }
}

macro_rules! command_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every command type the handler knows, with its wire name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommandType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl CommandType {
            /// All command types, in contract order.
            pub const ALL: &'static [CommandType] = &[$(CommandType::$variant),*];

            /// The wire name: the `type` field and the last subject token.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Looks a wire name up.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

command_types! {
    RegisterUser => "register_user",
    RegisterMachine => "register_machine",
    UpdateMachine => "update_machine",
    RetireMachine => "retire_machine",
    AddVenv => "add_venv",
    RemoveVenv => "remove_venv",
    DefineTestCase => "define_test_case",
    StartRun => "start_run",
    CancelRun => "cancel_run",
    ReportRunStarted => "report_run_started",
    ReportRunOutput => "report_run_output",
    ReportRunFinished => "report_run_finished",
    ReportRunTests => "report_run_tests",
    ReportVenvProvisioned => "report_venv_provisioned",
    ReportVenvProvisioningFailed => "report_venv_provisioning_failed",
    ReportHostKey => "report_host_key",
    ReportJenkinsQueued => "report_jenkins_queued",
    ReportJenkinsBuild => "report_jenkins_build",
    ExpireExecutorLease => "expire_executor_lease",
    DisableUser => "disable_user",
    ChangePassword => "change_password",
    RevokeTokens => "revoke_tokens",
    QuarantineTest => "quarantine_test",
    ReleaseTest => "release_test",
    LapseQuarantine => "lapse_quarantine",
    StartGroup => "start_group",
    CancelGroup => "cancel_group",
}

impl CommandType {
    /// True for the reports only executors (`executor:<name>` actors) may send.
    pub fn is_executor_report(self) -> bool {
        matches!(
            self,
            Self::ReportRunStarted
                | Self::ReportRunOutput
                | Self::ReportRunFinished
                | Self::ReportRunTests
                | Self::ReportVenvProvisioned
                | Self::ReportVenvProvisioningFailed
                | Self::ReportHostKey
                | Self::ReportJenkinsQueued
                | Self::ReportJenkinsBuild
        )
    }
}

impl Command {
    /// The command's type.
    pub fn command_type(&self) -> CommandType {
        match self {
            Self::RegisterUser(_) => CommandType::RegisterUser,
            Self::RegisterMachine(_) => CommandType::RegisterMachine,
            Self::UpdateMachine(_) => CommandType::UpdateMachine,
            Self::RetireMachine(_) => CommandType::RetireMachine,
            Self::AddVenv(_) => CommandType::AddVenv,
            Self::RemoveVenv(_) => CommandType::RemoveVenv,
            Self::DefineTestCase(_) => CommandType::DefineTestCase,
            Self::StartRun(_) => CommandType::StartRun,
            Self::CancelRun(_) => CommandType::CancelRun,
            Self::ReportRunStarted(_) => CommandType::ReportRunStarted,
            Self::ReportRunOutput(_) => CommandType::ReportRunOutput,
            Self::ReportRunFinished(_) => CommandType::ReportRunFinished,
            Self::ReportRunTests(_) => CommandType::ReportRunTests,
            Self::ReportVenvProvisioned(_) => CommandType::ReportVenvProvisioned,
            Self::ReportVenvProvisioningFailed(_) => CommandType::ReportVenvProvisioningFailed,
            Self::ReportHostKey(_) => CommandType::ReportHostKey,
            Self::ReportJenkinsQueued(_) => CommandType::ReportJenkinsQueued,
            Self::ReportJenkinsBuild(_) => CommandType::ReportJenkinsBuild,
            Self::ExpireExecutorLease(_) => CommandType::ExpireExecutorLease,
            Self::DisableUser(_) => CommandType::DisableUser,
            Self::ChangePassword(_) => CommandType::ChangePassword,
            Self::RevokeTokens(_) => CommandType::RevokeTokens,
            Self::QuarantineTest(_) => CommandType::QuarantineTest,
            Self::ReleaseTest(_) => CommandType::ReleaseTest,
            Self::LapseQuarantine(_) => CommandType::LapseQuarantine,
            Self::StartGroup(_) => CommandType::StartGroup,
            Self::CancelGroup(_) => CommandType::CancelGroup,
        }
    }
}

/// Why a payload was refused: the JSON path of the offending field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPayload(pub String);

fn decode<T: DeserializeOwned>(payload: &str) -> Result<T, InvalidPayload> {
    let mut deserializer = serde_json::Deserializer::from_str(payload);
    serde_path_to_error::deserialize(&mut deserializer).map_err(invalid_at)
}

/// Decodes a payload already parsed as JSON, with the errors [`parse_payload`] gives: for a
/// gateway that types a request body before it sends the command.
pub fn decode_value<T: DeserializeOwned>(payload: serde_json::Value) -> Result<T, InvalidPayload> {
    serde_path_to_error::deserialize(payload).map_err(invalid_at)
}

/// The payload error naming the JSON path where decoding failed.
fn invalid_at<E: std::fmt::Display>(err: serde_path_to_error::Error<E>) -> InvalidPayload {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if path == "." {
        InvalidPayload(format!("payload: {inner}"))
    } else {
        InvalidPayload(format!("payload.{path}: {inner}"))
    }
}

/// Decodes and validates the payload (JSON text) of a command of type `kind`.
pub fn parse_payload(kind: CommandType, payload: &str) -> Result<Incoming, InvalidPayload> {
    use CommandType as T;
    let ready = Incoming::Ready;
    Ok(match kind {
        T::RegisterUser => {
            Incoming::RegisterUser(decode::<RegisterUser<SecretString>>(payload)?.checked()?)
        }
        T::RegisterMachine => {
            Incoming::RegisterMachine(decode::<RegisterMachine<SecretString>>(payload)?.checked()?)
        }
        T::UpdateMachine => {
            Incoming::UpdateMachine(decode::<UpdateMachine<SecretString>>(payload)?.checked()?)
        }
        T::RetireMachine => ready(Command::RetireMachine(decode(payload)?)),
        T::AddVenv => ready(Command::AddVenv(decode(payload)?)),
        T::RemoveVenv => ready(Command::RemoveVenv(decode(payload)?)),
        T::DefineTestCase => {
            Incoming::DefineTestCase(decode::<DefineTestCase<SecretString>>(payload)?.checked()?)
        }
        T::StartRun => ready(Command::StartRun(decode::<StartRun>(payload)?.checked()?)),
        T::CancelRun => ready(Command::CancelRun(decode(payload)?)),
        T::ReportRunStarted => ready(Command::ReportRunStarted(decode(payload)?)),
        T::ReportRunOutput => ready(Command::ReportRunOutput(
            decode::<ReportRunOutput>(payload)?.checked(),
        )),
        T::ReportRunFinished => ready(Command::ReportRunFinished(
            decode::<ReportRunFinished>(payload)?.checked()?,
        )),
        T::ReportRunTests => ready(Command::ReportRunTests(decode(payload)?)),
        T::ReportVenvProvisioned => ready(Command::ReportVenvProvisioned(decode(payload)?)),
        T::ReportVenvProvisioningFailed => {
            ready(Command::ReportVenvProvisioningFailed(decode(payload)?))
        }
        T::ReportHostKey => ready(Command::ReportHostKey(decode(payload)?)),
        T::ReportJenkinsQueued => ready(Command::ReportJenkinsQueued(decode(payload)?)),
        T::ReportJenkinsBuild => ready(Command::ReportJenkinsBuild(decode(payload)?)),
        T::ExpireExecutorLease => ready(Command::ExpireExecutorLease(decode(payload)?)),
        T::DisableUser => ready(Command::DisableUser(decode(payload)?)),
        T::ChangePassword => {
            Incoming::ChangePassword(decode::<ChangePassword<SecretString>>(payload)?.checked()?)
        }
        T::RevokeTokens => ready(Command::RevokeTokens(decode(payload)?)),
        T::QuarantineTest => ready(Command::QuarantineTest(decode(payload)?)),
        T::ReleaseTest => ready(Command::ReleaseTest(decode(payload)?)),
        T::LapseQuarantine => ready(Command::LapseQuarantine(decode(payload)?)),
        T::StartGroup => ready(Command::StartGroup(
            decode::<StartGroup>(payload)?.checked()?,
        )),
        T::CancelGroup => ready(Command::CancelGroup(decode(payload)?)),
    })
}

#[cfg(test)]
mod wire_tests;
