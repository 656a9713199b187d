//! What a sender serialises is what the handler parses: typed payloads round-trip through
//! [`parse_payload`], secrets included.

use super::*;
use crate::ids::{MachineId, RunId, VenvId};
use crate::values::{Host, Label, MachineName, Os, Port, RemoteUser, Role, RunStatus, Username};

fn parsed<C: CommandPayload>(command: &C) -> Result<Incoming, InvalidPayload> {
    let json = serde_json::to_string(command).map_err(|err| InvalidPayload(err.to_string()))?;
    parse_payload(C::TYPE, &json)
}

#[test]
fn a_start_run_arrives_as_sent() {
    let start = StartRun {
        run_id: RunId::new(),
        test_case_id: crate::ids::TestCaseId::new(),
        machine_id: None,
        labels: [Label::parse("gpu")].into_iter().flatten().collect(),
        venv_id: Some(VenvId::new()),
        env: Default::default(),
        rerun_of: None,
        only: None,
        tests: Vec::new(),
    };
    let json = serde_json::to_value(&start).unwrap_or_default();
    assert!(json.get("machine_id").is_none(), "{json}");
    match parsed(&start) {
        Ok(Incoming::Ready(Command::StartRun(back))) => assert_eq!(back, start),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_selection_needs_rerun_of_for_only_and_not_both_kinds() {
    let rerun_of = r#""rerun_of":"0193a000-0000-7000-8000-000000000009""#;
    let base = r#""run_id":"0193a000-0000-7000-8000-000000000001","test_case_id":"0193a000-0000-7000-8000-000000000002""#;
    let test = r#""0193a000-0000-7000-8000-000000000003""#;
    let ok = format!(r#"{{{base},{rerun_of},"only":"failed"}}"#);
    assert!(parse_payload(CommandType::StartRun, &ok).is_ok());
    let tests_alone = format!(r#"{{{base},"tests":[{test}]}}"#);
    assert!(parse_payload(CommandType::StartRun, &tests_alone).is_ok());
    let too_many = vec![test; MAX_SELECTED_TESTS + 1].join(",");
    for (bad, field) in [
        (format!(r#"{{{base},"only":"failed"}}"#), "payload.only"),
        (
            format!(r#"{{{base},{rerun_of},"only":"failed","tests":[{test}]}}"#),
            "payload:",
        ),
        (
            format!(r#"{{{base},"tests":[{too_many}]}}"#),
            "payload.tests",
        ),
        (
            format!(r#"{{{base},{rerun_of},"only":"passed"}}"#),
            "payload.only",
        ),
    ] {
        match parse_payload(CommandType::StartRun, &bad) {
            Err(InvalidPayload(message)) => assert!(message.starts_with(field), "{message}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn secrets_travel_in_clear_to_the_handler_only() {
    let (Ok(name), Ok(host), Ok(user)) = (
        MachineName::parse("box"),
        Host::parse("10.0.0.1"),
        RemoteUser::parse("ubuntu"),
    ) else {
        panic!("valid values");
    };
    let machine = RegisterMachine {
        machine_id: MachineId::new(),
        name,
        host,
        port: Port::SSH,
        os: Os::Linux,
        username: user,
        password: Some(OutgoingSecret::new("hunter2-machine")),
        private_key: None,
        host_key: None,
        labels: Default::default(),
    };
    match parsed(&machine) {
        Ok(Incoming::RegisterMachine(back)) => {
            assert_eq!(
                back.password.map(|p| p.expose().to_owned()).as_deref(),
                Some("hunter2-machine")
            );
            assert_eq!(back.machine_id, machine.machine_id);
        }
        other => panic!("{other:?}"),
    }
    let Ok(username) = Username::parse("mia") else {
        panic!("a valid name");
    };
    let user = RegisterUser {
        username,
        role: Role::Member,
        password: OutgoingSecret::new("a long password"),
    };
    assert!(matches!(parsed(&user), Ok(Incoming::RegisterUser(_))));
}

#[test]
fn an_error_end_is_a_final_report() {
    let end = ReportRunFinished {
        run_id: RunId::new(),
        status: RunStatus::Error,
        exit_code: None,
        summary: None,
        reason: Some("unreachable".into()),
        error_code: Some("ssh_connect".into()),
        tests: Vec::new(),
    };
    assert!(matches!(
        parsed(&end),
        Ok(Incoming::Ready(Command::ReportRunFinished(back))) if back == end
    ));
}

#[test]
fn a_quarantine_arrives_as_sent_and_refuses_bad_fields() {
    let Ok(reason) = crate::values::Reason::parse("flaky: races the cache") else {
        panic!("a valid reason");
    };
    let quarantine = QuarantineTest {
        test_id: crate::ids::TestId(uuid::Uuid::from_u128(7)),
        reason,
        until: "2031-01-02T03:04:05Z".parse().ok(),
        test_case_id: None,
    };
    let json = serde_json::to_value(&quarantine).unwrap_or_default();
    assert_eq!(json["until"], "2031-01-02T03:04:05Z");
    assert!(json.get("test_case_id").is_none(), "{json}");
    assert!(matches!(
        parsed(&quarantine),
        Ok(Incoming::Ready(Command::QuarantineTest(back))) if back == quarantine
    ));
    let id = quarantine.test_id;
    let long = format!(r#"{{"test_id":"{id}","reason":"{}"}}"#, "x".repeat(1001));
    let refused = parse_payload(CommandType::QuarantineTest, &long).map(|_| ());
    assert!(
        matches!(&refused, Err(InvalidPayload(m)) if m.starts_with("payload.reason:")),
        "{refused:?}"
    );
    let bad_time = format!(r#"{{"test_id":"{id}","reason":"r","until":"tomorrow"}}"#);
    let refused = parse_payload(CommandType::QuarantineTest, &bad_time).map(|_| ());
    assert!(
        matches!(&refused, Err(InvalidPayload(m)) if m.starts_with("payload.until:")),
        "{refused:?}"
    );
    let release = format!(r#"{{"test_id":"{id}"}}"#);
    assert!(matches!(
        parse_payload(CommandType::ReleaseTest, &release),
        Ok(Incoming::Ready(Command::ReleaseTest(ReleaseTest { test_id }))) if test_id == id
    ));
}
