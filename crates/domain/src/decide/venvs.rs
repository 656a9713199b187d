//! `add_venv`, `remove_venv` and the executor's provisioning reports.
//!
//! Members manage the venvs of the machines they own; admins and trusted systems manage every
//! venv. A venv is `provisioning` once added, `free` once provisioned (then the oldest queued
//! run that can use it gets it), `broken` if provisioning failed.

use super::{live_machine, machine, reject, venv};
use crate::authz::{check_local, check_owner};
use crate::scheduling::then_fill;
use crate::state::{Lab, VenvStatus};
use runledger_types::Actor;
use runledger_types::command::{
    AddVenv, RemoveVenv, ReportVenvProvisioned, ReportVenvProvisioningFailed,
};
use runledger_types::event::{VenvAdded, VenvProvisioned, VenvProvisioningFailed, VenvRemoved};
use runledger_types::{
    Event, Os, Rejection, RejectionCode, RemotePath, VenvId, VenvName, values::InvalidValue,
};

/// `venv_added` with the resolved path, on a machine that is not retired.
pub(super) fn add_venv(
    lab: &Lab,
    actor: &Actor,
    command: &AddVenv,
) -> Result<Vec<Event>, Rejection> {
    if lab.venv(&command.venv_id).is_some() {
        return reject(
            RejectionCode::VenvExists,
            format!("venv {} already exists", command.venv_id),
        );
    }
    let found = machine(lab, command.machine_id)?;
    check_owner(lab, actor, command.machine_id, found)?;
    check_local(lab, actor, command.machine_id, found.is_local())?;
    let found = live_machine(lab, command.machine_id)?;
    let taken = lab.venvs().any(|(_, venv)| {
        venv.machine_id == command.machine_id
            && venv.name == command.name
            && venv.status != VenvStatus::Removed
    });
    if taken {
        return reject(
            RejectionCode::VenvNameTaken,
            format!(
                "machine {} already has a venv named {}",
                command.machine_id, command.name
            ),
        );
    }
    let path = match &command.path {
        Some(path) => path.clone(),
        None => default_path(found.os, &command.name).map_err(|err| {
            Rejection::new(
                RejectionCode::InvalidPayload,
                format!("payload.path: {err}"),
            )
        })?,
    };
    Ok(vec![Event::VenvAdded(VenvAdded {
        venv_id: command.venv_id,
        machine_id: command.machine_id,
        name: command.name.clone(),
        path,
        python: command.python.clone(),
        requirements: command.requirements.clone(),
    })])
}

/// `~/.runledger/venvs/<name>` on Linux, `~\.runledger\venvs\<name>` on Windows.
fn default_path(os: Os, name: &VenvName) -> Result<RemotePath, InvalidValue> {
    match os {
        Os::Linux => RemotePath::parse(format!("~/.runledger/venvs/{name}")),
        Os::Windows => RemotePath::parse(format!("~\\.runledger\\venvs\\{name}")),
    }
}

/// `venv_removed`, unless it is removed already or leased by a run.
pub(super) fn remove_venv(
    lab: &Lab,
    actor: &Actor,
    command: &RemoveVenv,
) -> Result<Vec<Event>, Rejection> {
    let found = venv(lab, command.venv_id)?;
    check_owner(
        lab,
        actor,
        found.machine_id,
        machine(lab, found.machine_id)?,
    )?;
    match found.status {
        VenvStatus::Removed => reject(
            RejectionCode::VenvRemoved,
            format!("venv {} was removed already", command.venv_id),
        ),
        VenvStatus::Leased(run_id) => reject(
            RejectionCode::VenvInUse,
            format!("venv {} is leased by run {run_id}", command.venv_id),
        ),
        _ => Ok(vec![Event::VenvRemoved(VenvRemoved {
            venv_id: command.venv_id,
        })]),
    }
}

/// `venv_provisioned`: the venv becomes free, and goes to the oldest queued run that can use it.
pub(super) fn provisioned(
    lab: &Lab,
    command: &ReportVenvProvisioned,
) -> Result<Vec<Event>, Rejection> {
    require_provisioning(lab, command.venv_id)?;
    let decided = vec![Event::VenvProvisioned(VenvProvisioned {
        venv_id: command.venv_id,
        python_version: command.python_version.clone(),
    })];
    Ok(then_fill(lab, decided, [command.venv_id]))
}

/// `venv_provisioning_failed`: the venv becomes broken.
pub(super) fn provisioning_failed(
    lab: &Lab,
    command: &ReportVenvProvisioningFailed,
) -> Result<Vec<Event>, Rejection> {
    require_provisioning(lab, command.venv_id)?;
    Ok(vec![Event::VenvProvisioningFailed(
        VenvProvisioningFailed {
            venv_id: command.venv_id,
            reason: command.reason.clone(),
            output_tail: command.output_tail.clone(),
        },
    )])
}

fn require_provisioning(lab: &Lab, venv_id: VenvId) -> Result<(), Rejection> {
    if venv(lab, venv_id)?.status != VenvStatus::Provisioning {
        return reject(
            RejectionCode::VenvNotProvisioning,
            format!("venv {venv_id} is not waiting for provisioning"),
        );
    }
    Ok(())
}
