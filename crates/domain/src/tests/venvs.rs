//! `add_venv`, `remove_venv` and the provisioning reports.

use crate::VenvStatus;
use crate::testing::*;
use runledger_types::command::{
    AddVenv, RemoveVenv, ReportVenvProvisioned, ReportVenvProvisioningFailed,
};
use runledger_types::event::{self, VenvAdded, VenvProvisioned, VenvProvisioningFailed};
use runledger_types::{
    Command, Event, Line, MachineId, Os, RejectionCode, RemotePath, VenvId, VenvName,
};

fn add(id: VenvId, machine_id: MachineId, name: &str) -> AddVenv {
    AddVenv {
        venv_id: id,
        machine_id,
        name: VenvName::parse(name).expect("name"),
        path: None,
        python: Line::parse("python3.12").expect("line"),
        requirements: vec![Line::parse("pytest>=8").expect("line")],
    }
}

fn added_at(c: &AddVenv, path: &str) -> Event {
    Event::VenvAdded(VenvAdded {
        venv_id: c.venv_id,
        machine_id: c.machine_id,
        name: c.name.clone(),
        path: RemotePath::parse(path).expect("path"),
        python: c.python.clone(),
        requirements: c.requirements.clone(),
    })
}

fn windows_machine(id: MachineId) -> Event {
    let Event::MachineRegistered(mut e) = machine(id, MEMBER, &[]) else {
        unreachable!()
    };
    e.os = Os::Windows;
    Event::MachineRegistered(e)
}

#[test]
fn add_venv_resolves_the_default_path_per_os() {
    let c = add(v(5), m(1), "py312");
    let expected = added_at(&c, "~/.runledger/venvs/py312");
    let lab = given(&world())
        .when(MEMBER, Command::AddVenv(c))
        .then_expect(&[expected]);
    assert_eq!(
        lab.venv(&v(5)).map(|v| v.status),
        Some(VenvStatus::Provisioning)
    );

    let c = add(v(6), m(2), "py312");
    let expected = added_at(&c, "~\\.runledger\\venvs\\py312");
    given(&all([world(), vec![windows_machine(m(2))]]))
        .when(MEMBER, Command::AddVenv(c))
        .then_expect(&[expected]);
}

#[test]
fn add_venv_keeps_a_given_path() {
    let mut c = add(v(5), m(1), "py312");
    c.path = Some(RemotePath::parse("/opt/venvs/a").expect("path"));
    let expected = added_at(&c, "/opt/venvs/a");
    given(&world())
        .when(ADMIN, Command::AddVenv(c))
        .then_expect(&[expected]);
}

#[test]
fn venv_ids_and_names_are_unique() {
    let taken = Command::AddVenv(add(v(1), m(1), "other"));
    given(&world())
        .when(ADMIN, taken)
        .then_reject(RejectionCode::VenvExists);
    let history = all([world(), vec![venv_added(v(2), m(1), "py")]]);
    let same_name = Command::AddVenv(add(v(3), m(1), "py"));
    let rejection = given(&history)
        .when(ADMIN, same_name.clone())
        .then_reject(RejectionCode::VenvNameTaken);
    assert!(rejection.message.contains("py"));
    let removed = all([
        history.clone(),
        vec![Event::VenvRemoved(event::VenvRemoved { venv_id: v(2) })],
    ]);
    given(&removed).when(ADMIN, same_name).events();
    let history = all([history, vec![machine(m(2), MEMBER, &[])]]);
    given(&history)
        .when(ADMIN, Command::AddVenv(add(v(3), m(2), "py")))
        .events();
}

#[test]
fn add_venv_needs_a_live_machine() {
    given(&base())
        .when(ADMIN, Command::AddVenv(add(v(5), m(1), "a")))
        .then_reject(RejectionCode::UnknownMachine);
    let history = all([
        world(),
        vec![Event::MachineRetired(event::MachineRetired {
            machine_id: m(1),
        })],
    ]);
    given(&history)
        .when(ADMIN, Command::AddVenv(add(v(5), m(1), "a")))
        .then_reject(RejectionCode::MachineRetired);
}

fn report_provisioned(id: VenvId) -> Command {
    Command::ReportVenvProvisioned(ReportVenvProvisioned {
        venv_id: id,
        python_version: Some("3.12.1".into()),
    })
}

#[test]
fn provisioning_makes_the_venv_free() {
    let history = all([world(), vec![venv_added(v(2), m(1), "b")]]);
    let lab = given(&history)
        .when(EXEC, report_provisioned(v(2)))
        .then_expect(&[Event::VenvProvisioned(VenvProvisioned {
            venv_id: v(2),
            python_version: Some("3.12.1".into()),
        })]);
    assert_eq!(lab.venv(&v(2)).map(|v| v.status), Some(VenvStatus::Free));
}

#[test]
fn only_a_provisioning_venv_may_be_reported_provisioned() {
    let rejection = given(&world())
        .when(EXEC, report_provisioned(v(1)))
        .then_reject(RejectionCode::VenvNotProvisioning);
    assert!(rejection.message.contains(&v(1).to_string()));
    given(&world())
        .when(EXEC, report_provisioned(v(9)))
        .then_reject(RejectionCode::UnknownVenv);
}

#[test]
fn failed_provisioning_breaks_the_venv() {
    let history = all([world(), vec![venv_added(v(2), m(1), "b")]]);
    let report = Command::ReportVenvProvisioningFailed(ReportVenvProvisioningFailed {
        venv_id: v(2),
        reason: "pip failed".into(),
        output_tail: "ERROR: no matching distribution".into(),
    });
    let failed = Event::VenvProvisioningFailed(VenvProvisioningFailed {
        venv_id: v(2),
        reason: "pip failed".into(),
        output_tail: "ERROR: no matching distribution".into(),
    });
    let lab = given(&history)
        .when(EXEC, report.clone())
        .then_expect(&[failed]);
    assert_eq!(lab.venv(&v(2)).map(|v| v.status), Some(VenvStatus::Broken));
    given(&world())
        .when(EXEC, report)
        .then_reject(RejectionCode::UnknownVenv);
}

fn remove(id: VenvId) -> Command {
    Command::RemoveVenv(RemoveVenv { venv_id: id })
}

#[test]
fn remove_venv_once_and_never_while_leased() {
    let removed = Event::VenvRemoved(event::VenvRemoved { venv_id: v(1) });
    given(&world())
        .when(MEMBER, remove(v(1)))
        .then_expect(std::slice::from_ref(&removed));
    given(&all([world(), vec![removed]]))
        .when(MEMBER, remove(v(1)))
        .then_reject(RejectionCode::VenvRemoved);
    let leased = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
    ]);
    let rejection = given(&leased)
        .when(ADMIN, remove(v(1)))
        .then_reject(RejectionCode::VenvInUse);
    assert!(rejection.message.contains(&r(1).to_string()));
    given(&world())
        .when(ADMIN, remove(v(7)))
        .then_reject(RejectionCode::UnknownVenv);
}
