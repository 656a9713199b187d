//! `register_user`, `define_test_case`, and how `evolve` versions streams.

use crate::testing::*;
use crate::{Lab, evolve};
use runledger_types::command::{DefineTestCase, RegisterUser, TestFile};
use runledger_types::event::{TestCaseDefined, UserRegistered};
use runledger_types::{
    Command, EnvName, Event, MachineName, PasswordHash, RejectionCode, RelativePath, Role,
    StreamId, StreamType, Text, Username,
};

fn register(name: &str) -> Command {
    Command::RegisterUser(RegisterUser {
        username: Username::parse(name).expect("username"),
        role: Role::Member,
        password: PasswordHash("$argon2id$hash".into()),
    })
}

#[test]
fn register_user_records_the_password_hash() {
    given(&users())
        .when(ADMIN, register("bob"))
        .then_expect(&[Event::UserRegistered(UserRegistered {
            username: Username::parse("bob").expect("username"),
            role: Role::Member,
            password_hash: PasswordHash("$argon2id$hash".into()),
        })]);
}

#[test]
fn a_trusted_system_may_register_users() {
    let (events, lab) = given(&[]).when(SYSTEM, register("bob")).events();
    assert_eq!(events.len(), 1);
    let bob = Username::parse("bob").expect("username");
    assert_eq!(lab.user(&bob).map(|u| u.role), Some(Role::Member));
}

#[test]
fn a_taken_username_is_refused() {
    let rejection = given(&users())
        .when(ADMIN, register(MEMBER))
        .then_reject(RejectionCode::UserExists);
    assert!(rejection.message.contains(MEMBER));
}

fn define(id: runledger_types::TestCaseId) -> DefineTestCase {
    DefineTestCase {
        test_case_id: id,
        name: MachineName::parse("smoke").expect("name"),
        description: "quick checks".into(),
        command: Some(Text::parse("pytest -x").expect("text")),
        jenkins: None,
        files: vec![TestFile {
            path: RelativePath::parse("conftest.py").expect("path"),
            content: Some("# fixtures".into()),
            content_base64: None,
        }],
        env: [(EnvName::parse("CI").expect("env"), "1".to_owned())].into(),
        env_overridable: [EnvName::parse("TARGET").expect("env")].into(),
        timeout_s: 60,
        junit_xml: Some(RelativePath::parse("report.xml").expect("path")),
        max_output_bytes: runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES,
        retries: 2,
    }
}

#[test]
fn define_test_case_copies_every_field() {
    let c = define(tc(7));
    let expected = Event::TestCaseDefined(TestCaseDefined {
        test_case_id: c.test_case_id,
        name: c.name.clone(),
        description: c.description.clone(),
        command: c.command.clone(),
        jenkins: None,
        files: c.files.clone(),
        env: c.env.clone(),
        env_overridable: c.env_overridable.clone(),
        timeout_s: 60,
        junit_xml: c.junit_xml.clone(),
        max_output_bytes: runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES,
        retries: 2,
    });
    let lab = given(&users())
        .when(ADMIN, Command::DefineTestCase(c))
        .then_expect(&[expected]);
    assert_eq!(lab.test_case(&tc(7)).map(|t| t.retries), Some(2));
}

#[test]
fn a_taken_test_case_id_is_refused() {
    let rejection = given(&base())
        .when(ADMIN, Command::DefineTestCase(define(tc(1))))
        .then_reject(RejectionCode::TestCaseExists);
    assert!(rejection.message.contains(&tc(1).to_string()));
}

#[test]
fn evolve_bumps_the_version_of_the_event_stream_only() {
    let lab = given(&world()).lab;
    let machine_stream = StreamId::new(StreamType::Machine, m(1));
    let venv_stream = StreamId::new(StreamType::Venv, v(1));
    assert_eq!(lab.stream_version(&machine_stream), 1);
    assert_eq!(lab.stream_version(&venv_stream), 2);
    assert_eq!(
        lab.stream_version(&StreamId::new(StreamType::User, ADMIN)),
        1
    );
    assert_eq!(lab.stream_version(&StreamId::new(StreamType::Run, r(1))), 0);
}

#[test]
fn position_is_set_by_the_caller_and_clones_are_independent() {
    let mut lab = Lab::new();
    assert_eq!(lab.position(), 0);
    lab.set_position(42);
    let snapshot = lab.clone();
    evolve(&mut lab, &test_case(tc(9)));
    assert_eq!(snapshot.position(), 42);
    assert!(snapshot.test_case(&tc(9)).is_none());
    assert!(lab.test_case(&tc(9)).is_some());
}
