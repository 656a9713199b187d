//! Decide: a pure function from the lab's state and one command to the events to append, or to
//! the [`Rejection`] that explains why nothing changes. One module per command family.

mod excuse;
mod groups;
mod jenkins;
mod machines;
mod quarantine;
mod reports;
mod runs;
mod selection;
mod test_cases;
mod test_results;
mod users;
mod venvs;

pub use runs::MAX_QUEUED_RUNS_PER_ACTOR;

use crate::authz;
use crate::state::{Lab, MachineState, RunState, TestCaseState, VenvState};
use chrono::{DateTime, Utc};
use runledger_types::{
    Actor, Command, Event, MachineId, Rejection, RejectionCode, RunId, TestCaseId, VenvId,
};

/// Decides what `command`, asked by `actor`, does to `lab`: `Ok(events)` to append in order (may
/// be empty: accepted, nothing changes), or a [`Rejection`] (a domain value, not an error).
///
/// `now` is the decision's time, the one its events are recorded with: the only clock a
/// decision reads (whether a quarantine still holds, whether an end is in the future). The
/// events record what was decided, so replaying the log never decides again.
pub fn decide(
    lab: &Lab,
    actor: &Actor,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, Rejection> {
    let executor = authz::check_command(lab, actor, command.command_type())?;
    users::refuse_disabled_actor(lab, actor)?;
    let executor = executor.as_deref().unwrap_or_default();
    let decided = match command {
        Command::RegisterUser(c) => users::register_user(lab, c),
        Command::DefineTestCase(c) => test_cases::define_test_case(lab, c),
        Command::RegisterMachine(c) => machines::register_machine(lab, actor, c),
        Command::UpdateMachine(c) => machines::update_machine(lab, actor, c),
        Command::RetireMachine(c) => machines::retire_machine(lab, actor, c),
        Command::AddVenv(c) => venvs::add_venv(lab, actor, c),
        Command::RemoveVenv(c) => venvs::remove_venv(lab, actor, c),
        Command::StartRun(c) => runs::start_run(lab, actor, c),
        Command::CancelRun(c) => runs::cancel_run(lab, actor, c),
        Command::ReportRunStarted(c) => reports::run_started(lab, executor, c),
        Command::ReportRunOutput(c) => reports::run_output(lab, executor, c),
        Command::ReportRunFinished(c) => reports::run_finished(lab, executor, c, now),
        Command::ReportRunTests(c) => test_results::run_tests(lab, executor, c),
        Command::ReportVenvProvisioned(c) => venvs::provisioned(lab, c),
        Command::ReportVenvProvisioningFailed(c) => venvs::provisioning_failed(lab, c),
        Command::ReportHostKey(c) => machines::report_host_key(lab, c),
        Command::ReportJenkinsQueued(c) => jenkins::queued(lab, executor, c),
        Command::ReportJenkinsBuild(c) => jenkins::build_started(lab, executor, c),
        Command::ExpireExecutorLease(c) => reports::expire_lease(lab, c),
        Command::DisableUser(c) => users::disable_user(lab, actor, c),
        Command::ChangePassword(c) => users::change_password(lab, actor, c),
        Command::RevokeTokens(c) => users::revoke_tokens(lab, actor, c),
        Command::QuarantineTest(c) => quarantine::quarantine_test(lab, actor, c, now),
        Command::ReleaseTest(c) => quarantine::release_test(lab, c),
        Command::LapseQuarantine(c) => quarantine::lapse_quarantine(lab, c, now),
        Command::StartGroup(c) => groups::start_group(lab, actor, c),
        Command::CancelGroup(c) => groups::cancel_group(lab, actor, c),
    }?;
    Ok(groups::then_close_groups(lab, decided))
}

/// A rejection with `code` and `message`.
fn reject<T>(code: RejectionCode, message: String) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}

/// The machine `machine_id`, or `unknown_machine`.
fn machine(lab: &Lab, machine_id: MachineId) -> Result<&MachineState, Rejection> {
    match lab.machine(&machine_id) {
        Some(machine) => Ok(machine),
        None => reject(
            RejectionCode::UnknownMachine,
            format!("machine {machine_id} is not registered"),
        ),
    }
}

/// The machine `machine_id` if it is not retired; else `unknown_machine` or `machine_retired`.
fn live_machine(lab: &Lab, machine_id: MachineId) -> Result<&MachineState, Rejection> {
    let found = machine(lab, machine_id)?;
    if found.retired {
        return reject(
            RejectionCode::MachineRetired,
            format!("machine {machine_id} is retired"),
        );
    }
    Ok(found)
}

/// The venv `venv_id`, or `unknown_venv`.
fn venv(lab: &Lab, venv_id: VenvId) -> Result<&VenvState, Rejection> {
    match lab.venv(&venv_id) {
        Some(venv) => Ok(venv),
        None => reject(
            RejectionCode::UnknownVenv,
            format!("venv {venv_id} does not exist"),
        ),
    }
}

/// The run `run_id`, or `unknown_run`.
fn run(lab: &Lab, run_id: RunId) -> Result<&RunState, Rejection> {
    match lab.run(&run_id) {
        Some(run) => Ok(run),
        None if let Some(status) = lab.forgotten_run(&run_id) => reject(
            RejectionCode::RunFinished,
            format!("run {run_id} has already finished ({})", status.as_str()),
        ),
        None => reject(
            RejectionCode::UnknownRun,
            format!("run {run_id} does not exist"),
        ),
    }
}

/// `unknown_test_case` unless `test_case_id` is defined.
fn require_test_case(lab: &Lab, test_case_id: TestCaseId) -> Result<&TestCaseState, Rejection> {
    match lab.test_case(&test_case_id) {
        Some(test_case) => Ok(test_case),
        None => reject(
            RejectionCode::UnknownTestCase,
            format!("test case {test_case_id} is not defined"),
        ),
    }
}
