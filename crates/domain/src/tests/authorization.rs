//! Who may do what: roles, ownership, trusted systems and executors.

use crate::testing::*;
use runledger_types::command::{
    AddVenv, CancelRun, RemoveVenv, ReportRunStarted, RetireMachine, UpdateMachine,
};
use runledger_types::{Command, Line, MachineName, RejectionCode, VenvName};

fn rename(machine_id: runledger_types::MachineId) -> Command {
    Command::UpdateMachine(UpdateMachine {
        name: Some(MachineName::parse("renamed").expect("name")),
        ..UpdateMachine::new(machine_id)
    })
}

fn add_venv(n: u128) -> Command {
    Command::AddVenv(AddVenv {
        venv_id: v(n),
        machine_id: m(1),
        name: VenvName::parse(format!("extra{n}")).expect("name"),
        path: None,
        python: Line::parse("python3").expect("line"),
        requirements: Vec::new(),
    })
}

#[test]
fn members_manage_only_machines_they_own() {
    given(&world()).when(MEMBER, rename(m(1))).events();
    given(&world())
        .when(OTHER, rename(m(1)))
        .then_reject(RejectionCode::Forbidden);
    let retire = Command::RetireMachine(RetireMachine { machine_id: m(1) });
    let rejection = given(&world())
        .when(OTHER, retire.clone())
        .then_reject(RejectionCode::Forbidden);
    assert!(rejection.message.contains(&m(1).to_string()));
    given(&world()).when(MEMBER, retire).events();
}

#[test]
fn admins_and_trusted_systems_manage_every_machine() {
    given(&world()).when(ADMIN, rename(m(1))).events();
    given(&world()).when(SYSTEM, rename(m(1))).events();
}

#[test]
fn members_manage_venvs_of_their_own_machines_only() {
    given(&world()).when(MEMBER, add_venv(5)).events();
    given(&world())
        .when(OTHER, add_venv(5))
        .then_reject(RejectionCode::Forbidden);
    given(&world()).when(ADMIN, add_venv(5)).events();
    let remove = Command::RemoveVenv(RemoveVenv { venv_id: v(1) });
    given(&world())
        .when(OTHER, remove.clone())
        .then_reject(RejectionCode::Forbidden);
    given(&world()).when(MEMBER, remove).events();
}

#[test]
fn members_may_not_register_users_or_define_test_cases() {
    let rejection = given(&users())
        .when(MEMBER, Command::DefineTestCase(define_smoke()))
        .then_reject(RejectionCode::Forbidden);
    assert!(rejection.message.contains("define_test_case"));
    let register = Command::RegisterUser(runledger_types::command::RegisterUser {
        username: runledger_types::Username::parse("eve").expect("username"),
        role: runledger_types::Role::Admin,
        password: runledger_types::PasswordHash("$argon2id$x".into()),
    });
    given(&users())
        .when(MEMBER, register)
        .then_reject(RejectionCode::Forbidden);
}

fn define_smoke() -> runledger_types::command::DefineTestCase {
    runledger_types::command::DefineTestCase {
        test_case_id: tc(5),
        name: MachineName::parse("smoke").expect("name"),
        description: String::new(),
        command: Some(runledger_types::Text::parse("true").expect("text")),
        jenkins: None,
        files: Vec::new(),
        env: Default::default(),
        env_overridable: Default::default(),
        timeout_s: 10,
        junit_xml: None,
        max_output_bytes: runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES,
        retries: 0,
    }
}

#[test]
fn any_user_may_start_a_run_on_any_machine() {
    let mut command = start(r(1));
    command.machine_id = Some(m(1));
    given(&world())
        .when(OTHER, Command::StartRun(command))
        .events();
}

#[test]
fn members_cancel_only_their_own_runs() {
    let history = all([
        world(),
        vec![requested(r(1), MEMBER), queued(r(1), "no_free_venv")],
    ]);
    let cancel = Command::CancelRun(CancelRun {
        run_id: r(1),
        reason: None,
    });
    let rejection = given(&history)
        .when(OTHER, cancel.clone())
        .then_reject(RejectionCode::Forbidden);
    assert!(rejection.message.contains(&r(1).to_string()));
    given(&history).when(MEMBER, cancel.clone()).events();
    given(&history).when(ADMIN, cancel.clone()).events();
    given(&history).when(SYSTEM, cancel).events();
}

#[test]
fn executor_reports_come_only_from_executors() {
    let history = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
    ]);
    let report = Command::ReportRunStarted(ReportRunStarted { run_id: r(1) });
    for actor in [ADMIN, MEMBER, SYSTEM, "executor:"] {
        given(&history)
            .when(actor, report.clone())
            .then_reject(RejectionCode::Forbidden);
    }
    given(&history).when(EXEC, report).events();
}

#[test]
fn executors_are_trusted_systems_for_other_commands() {
    given(&users())
        .when(EXEC, Command::DefineTestCase(define_smoke()))
        .events();
}

fn register_local(n: u128) -> Command {
    Command::RegisterMachine(runledger_types::command::RegisterMachine {
        machine_id: m(n),
        name: MachineName::parse("this host").expect("name"),
        host: runledger_types::Host::parse("local").expect("host"),
        port: runledger_types::Port::SSH,
        os: runledger_types::Os::Linux,
        username: runledger_types::RemoteUser::parse("runner").expect("user"),
        password: None,
        private_key: None,
        host_key: None,
        labels: Default::default(),
    })
}

#[test]
fn members_may_not_register_a_local_machine() {
    let rejection = given(&world())
        .when(MEMBER, register_local(8))
        .then_reject(RejectionCode::Forbidden);
    assert!(rejection.message.contains("local"), "{}", rejection.message);
    given(&world()).when(ADMIN, register_local(8)).events();
    given(&world()).when(SYSTEM, register_local(8)).events();
}

#[test]
fn members_may_not_switch_their_machine_to_local() {
    let to_local = Command::UpdateMachine(UpdateMachine {
        host: Some(runledger_types::Host::parse("local").expect("host")),
        ..UpdateMachine::new(m(1))
    });
    given(&world())
        .when(MEMBER, to_local.clone())
        .then_reject(RejectionCode::Forbidden);
    given(&world()).when(ADMIN, to_local).events();
}

#[test]
fn members_may_not_add_venvs_to_a_local_machine_they_own() {
    // A member-owned local machine can only come from a log written before the rule.
    let mut events = world();
    events.push(machine(m(8), MEMBER, &[]));
    if let Some(runledger_types::Event::MachineRegistered(registered)) = events.last_mut() {
        registered.host = runledger_types::Host::parse("local").expect("host");
    }
    let venv = Command::AddVenv(AddVenv {
        machine_id: m(8),
        ..match add_venv(9) {
            Command::AddVenv(venv) => venv,
            _ => unreachable!(),
        }
    });
    given(&events)
        .when(MEMBER, venv.clone())
        .then_reject(RejectionCode::Forbidden);
    given(&events).when(ADMIN, venv).events();
}
