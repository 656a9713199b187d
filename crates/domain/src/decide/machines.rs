//! `register_machine`, `update_machine`, `retire_machine` and the executor's `report_host_key`.
//!
//! Members may register machines (they become the owner) and update or retire the machines they
//! own; admins and trusted systems manage every machine.

use super::{live_machine, machine, reject};
use crate::authz::{check_local, check_owner};
use crate::scheduling::then_fill;
use crate::state::Lab;
use runledger_types::command::{RegisterMachine, ReportHostKey, RetireMachine, UpdateMachine};
use runledger_types::event::{HostKeyPinned, MachineRegistered, MachineRetired, MachineUpdated};
use runledger_types::{Actor, Event, Rejection, RejectionCode, SealedSecret};

/// A new machine owned by `actor`, unless its id is taken. Credentials arrive sealed.
pub(super) fn register_machine(
    lab: &Lab,
    actor: &Actor,
    command: &RegisterMachine<SealedSecret>,
) -> Result<Vec<Event>, Rejection> {
    if lab.machine(&command.machine_id).is_some() {
        return reject(
            RejectionCode::MachineExists,
            format!("machine {} is already registered", command.machine_id),
        );
    }
    check_local(lab, actor, command.machine_id, command.host.is_local())?;
    Ok(vec![Event::MachineRegistered(MachineRegistered {
        machine_id: command.machine_id,
        name: command.name.clone(),
        host: command.host.clone(),
        port: command.port,
        os: command.os,
        username: command.username.clone(),
        owner: actor.clone(),
        password: command.password.clone(),
        private_key: command.private_key.clone(),
        host_key: command.host_key.clone(),
        labels: command.labels.clone(),
    })])
}

/// `machine_updated` with only the given fields (no field given: accepted, no events). New
/// labels may let a queued run use a free venv of the machine: those runs are assigned.
pub(super) fn update_machine(
    lab: &Lab,
    actor: &Actor,
    command: &UpdateMachine<SealedSecret>,
) -> Result<Vec<Event>, Rejection> {
    let found = machine(lab, command.machine_id)?;
    check_owner(lab, actor, command.machine_id, found)?;
    let local = command
        .host
        .as_ref()
        .map_or(found.is_local(), |host| host.is_local());
    check_local(lab, actor, command.machine_id, local)?;
    live_machine(lab, command.machine_id)?;
    let update = MachineUpdated {
        machine_id: command.machine_id,
        name: command.name.clone(),
        host: command.host.clone(),
        port: command.port,
        os: command.os,
        username: command.username.clone(),
        password: command.password.clone(),
        private_key: command.private_key.clone(),
        host_key: command.host_key.clone(),
        labels: command.labels.clone(),
    };
    if update
        == (MachineUpdated {
            machine_id: command.machine_id,
            ..MachineUpdated::default()
        })
    {
        return Ok(Vec::new());
    }
    let decided = vec![Event::MachineUpdated(update)];
    if command.labels.is_none() {
        return Ok(decided);
    }
    let venvs = lab
        .venvs()
        .filter(|(_, venv)| venv.machine_id == command.machine_id)
        .map(|(id, _)| *id)
        .collect::<Vec<_>>();
    Ok(then_fill(lab, decided, venvs))
}

/// `machine_retired`. Runs already assigned or running there continue; queued runs stay queued.
pub(super) fn retire_machine(
    lab: &Lab,
    actor: &Actor,
    command: &RetireMachine,
) -> Result<Vec<Event>, Rejection> {
    let found = machine(lab, command.machine_id)?;
    check_owner(lab, actor, command.machine_id, found)?;
    live_machine(lab, command.machine_id)?;
    Ok(vec![Event::MachineRetired(MachineRetired {
        machine_id: command.machine_id,
    })])
}

/// Trust on first use: pins the first key seen; the same key again changes nothing; another key
/// is refused with `host_key_mismatch`.
pub(super) fn report_host_key(lab: &Lab, command: &ReportHostKey) -> Result<Vec<Event>, Rejection> {
    let found = machine(lab, command.machine_id)?;
    match &found.host_key {
        None => Ok(vec![Event::HostKeyPinned(HostKeyPinned {
            machine_id: command.machine_id,
            fingerprint: command.fingerprint.clone(),
        })]),
        Some(pinned) if *pinned == command.fingerprint => Ok(Vec::new()),
        Some(pinned) => reject(
            RejectionCode::HostKeyMismatch,
            format!(
                "machine {} presented host key {} but {pinned} is pinned",
                command.machine_id, command.fingerprint
            ),
        ),
    }
}
