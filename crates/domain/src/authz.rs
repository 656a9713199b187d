//! Who may do what.
//!
//! An actor whose name is a registered username follows that user's role; any other actor is a
//! trusted system (a CI server, a script, an executor) and may do everything except send
//! executor reports, which only `executor:<name>` actors may send. Members may register
//! machines, manage the machines they own and the venvs on those machines, start runs, cancel
//! their own runs and quarantine or release any test; admins may do everything a trusted system
//! may. Executors may not touch quarantines: their own reports are weighed against them.

use crate::state::{Lab, MachineState};
use runledger_types::command::CommandType;
use runledger_types::{Actor, Rejection, RejectionCode, Role, Username};

/// The actor of a command, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A registered admin, or any actor that is not a registered user.
    Trusted,
    /// A registered member.
    Member,
}

/// Classifies `actor` against the registered users.
pub(crate) fn principal(lab: &Lab, actor: &Actor) -> Principal {
    let role = Username::parse(actor.as_str())
        .ok()
        .and_then(|name| lab.user(&name))
        .map(|user| user.role);
    match role {
        Some(Role::Member) => Principal::Member,
        Some(Role::Admin) | None => Principal::Trusted,
    }
}

/// Refuses executor reports from non-executors, and the admin-only commands from members.
/// Returns the executor's name for an executor report.
pub(crate) fn check_command(
    lab: &Lab,
    actor: &Actor,
    kind: CommandType,
) -> Result<Option<String>, Rejection> {
    if kind.is_executor_report() {
        return match actor.executor_name() {
            Some(name) => Ok(Some(name.to_owned())),
            None => Err(forbidden(format!(
                "{} is an executor report; actor {actor} is not an executor:<name>",
                kind.as_str()
            ))),
        };
    }
    let quarantine = matches!(
        kind,
        CommandType::QuarantineTest | CommandType::ReleaseTest | CommandType::LapseQuarantine
    );
    if quarantine && actor.executor_name().is_some() {
        return Err(forbidden(format!(
            "{} changes which failures count; executor {actor}, whose reports are weighed \
             against it, may not send it",
            kind.as_str()
        )));
    }
    let admin_only = matches!(
        kind,
        CommandType::RegisterUser
            | CommandType::DefineTestCase
            | CommandType::ExpireExecutorLease
            | CommandType::LapseQuarantine
    );
    if admin_only && principal(lab, actor) == Principal::Member {
        return Err(forbidden(format!(
            "member {actor} may not {}: only admins may",
            kind.as_str()
        )));
    }
    Ok(None)
}

/// Members manage only the machines they own (and the venvs on them).
pub(crate) fn check_owner(
    lab: &Lab,
    actor: &Actor,
    machine_id: impl std::fmt::Display,
    machine: &MachineState,
) -> Result<(), Rejection> {
    if principal(lab, actor) == Principal::Member && machine.owner != *actor {
        return Err(forbidden(format!(
            "member {actor} does not own machine {machine_id} (owner: {})",
            machine.owner
        )));
    }
    Ok(())
}

/// Only admins and trusted systems manage a `local` machine: its venvs are created, and its
/// runs started, as child processes on an executor's own host, which holds the credential key.
pub(crate) fn check_local(
    lab: &Lab,
    actor: &Actor,
    machine_id: impl std::fmt::Display,
    local: bool,
) -> Result<(), Rejection> {
    if local && principal(lab, actor) == Principal::Member {
        return Err(forbidden(format!(
            "member {actor} may not manage machine {machine_id}: host `local` runs on an \
             executor's own host, so only admins may"
        )));
    }
    Ok(())
}

/// A `forbidden` rejection.
pub(crate) fn forbidden(message: String) -> Rejection {
    Rejection::new(RejectionCode::Forbidden, message)
}
