//! `register_machine`, `update_machine`, `retire_machine`, `report_host_key`, heartbeats.

use crate::testing::*;
use runledger_types::command::{
    RegisterMachine, ReportHostKey, ReportRunStarted, RetireMachine, UpdateMachine,
};
use runledger_types::event::{self, HostKeyPinned, MachineRegistered, MachineUpdated};
use runledger_types::{
    Command, Event, Host, HostKeyFingerprint, MachineId, MachineName, Os, Port, RejectionCode,
    RemoteUser, SealedSecret, StreamId, StreamType,
};

fn sealed(tag: &str) -> SealedSecret {
    SealedSecret {
        key_id: "k1".into(),
        alg: "aes-256-gcm".into(),
        nonce: "bm9uY2U".into(),
        ciphertext: tag.into(),
    }
}

fn register(id: MachineId) -> RegisterMachine<SealedSecret> {
    RegisterMachine {
        machine_id: id,
        name: MachineName::parse("win box").expect("name"),
        host: Host::parse("lab-7.example.com").expect("host"),
        port: Port::SSH,
        os: Os::Windows,
        username: RemoteUser::parse("tester").expect("user"),
        password: Some(sealed("pw")),
        private_key: Some(sealed("key")),
        host_key: None,
        labels: labels(&["windows"]),
    }
}

fn update(id: MachineId) -> UpdateMachine<SealedSecret> {
    UpdateMachine::new(id)
}

fn fingerprint(fill: char) -> HostKeyFingerprint {
    HostKeyFingerprint::parse(format!("SHA256:{}", fill.to_string().repeat(43))).expect("fp")
}

#[test]
fn register_machine_makes_the_actor_owner_and_keeps_secrets_sealed() {
    let c = register(m(9));
    let expected = Event::MachineRegistered(MachineRegistered {
        machine_id: m(9),
        name: c.name.clone(),
        host: c.host.clone(),
        port: c.port,
        os: Os::Windows,
        username: c.username.clone(),
        owner: actor_of(MEMBER),
        password: Some(sealed("pw")),
        private_key: Some(sealed("key")),
        host_key: None,
        labels: labels(&["windows"]),
    });
    let lab = given(&users())
        .when(MEMBER, Command::RegisterMachine(c))
        .then_expect(&[expected]);
    assert_eq!(lab.machine(&m(9)).map(|m| m.owner.as_str()), Some(MEMBER));
}

#[test]
fn a_taken_machine_id_is_refused() {
    given(&world())
        .when(ADMIN, Command::RegisterMachine(register(m(1))))
        .then_reject(RejectionCode::MachineExists);
}

#[test]
fn update_machine_carries_only_the_given_fields() {
    let mut c = update(m(1));
    c.port = Some(Port::parse(2222).expect("port"));
    c.password = Some(sealed("new"));
    given(&world())
        .when(MEMBER, Command::UpdateMachine(c))
        .then_expect(&[Event::MachineUpdated(MachineUpdated {
            machine_id: m(1),
            port: Some(Port::parse(2222).expect("port")),
            password: Some(sealed("new")),
            ..MachineUpdated::default()
        })]);
    given(&world())
        .when(MEMBER, Command::UpdateMachine(update(m(1))))
        .then_expect(&[]);
}

#[test]
fn update_of_unknown_or_retired_machines_is_refused() {
    let rejection = given(&world())
        .when(ADMIN, Command::UpdateMachine(update(m(8))))
        .then_reject(RejectionCode::UnknownMachine);
    assert!(rejection.message.contains(&m(8).to_string()));
    let retired = all([world(), vec![retired(m(1))]]);
    given(&retired)
        .when(ADMIN, Command::UpdateMachine(update(m(1))))
        .then_reject(RejectionCode::MachineRetired);
}

fn retired(id: MachineId) -> Event {
    Event::MachineRetired(event::MachineRetired { machine_id: id })
}

#[test]
fn retire_machine_once() {
    let retire = Command::RetireMachine(RetireMachine { machine_id: m(1) });
    let lab = given(&world())
        .when(MEMBER, retire.clone())
        .then_expect(&[retired(m(1))]);
    assert!(lab.machine(&m(1)).is_some_and(|m| m.retired));
    given(&all([world(), vec![retired(m(1))]]))
        .when(MEMBER, retire)
        .then_reject(RejectionCode::MachineRetired);
    given(&world())
        .when(
            ADMIN,
            Command::RetireMachine(RetireMachine { machine_id: m(4) }),
        )
        .then_reject(RejectionCode::UnknownMachine);
}

#[test]
fn retiring_keeps_assigned_runs_going_and_queued_runs_queued() {
    let history = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![
            requested(r(2), MEMBER),
            queued(r(2), "no_free_venv"),
            retired(m(1)),
        ],
    ]);
    let lab = given(&history).lab;
    assert_eq!(lab.queued_runs().collect::<Vec<_>>(), vec![r(2)]);
    given(&history)
        .when(
            EXEC,
            Command::ReportRunStarted(ReportRunStarted { run_id: r(1) }),
        )
        .then_expect(&[started(r(1), "e1")]);
}

#[test]
fn the_first_host_key_is_pinned_then_enforced() {
    let report = |fill| {
        Command::ReportHostKey(ReportHostKey {
            machine_id: m(1),
            fingerprint: fingerprint(fill),
        })
    };
    let pinned = Event::HostKeyPinned(HostKeyPinned {
        machine_id: m(1),
        fingerprint: fingerprint('A'),
    });
    given(&world())
        .when(EXEC, report('A'))
        .then_expect(std::slice::from_ref(&pinned));
    let history = all([world(), vec![pinned]]);
    given(&history).when(EXEC, report('A')).then_expect(&[]);
    let rejection = given(&history)
        .when(EXEC, report('B'))
        .then_reject(RejectionCode::HostKeyMismatch);
    assert!(rejection.message.contains(&m(1).to_string()));
    given(&base())
        .when(EXEC, report('A'))
        .then_reject(RejectionCode::UnknownMachine);
}

#[test]
fn a_host_key_given_at_registration_is_pinned() {
    let mut c = register(m(9));
    c.host_key = Some(fingerprint('A'));
    let (_, lab) = given(&users())
        .when(ADMIN, Command::RegisterMachine(c))
        .events();
    let report = Command::ReportHostKey(ReportHostKey {
        machine_id: m(9),
        fingerprint: fingerprint('C'),
    });
    given_lab(lab)
        .when(EXEC, report)
        .then_reject(RejectionCode::HostKeyMismatch);
}

fn given_lab(lab: crate::Lab) -> Given {
    Given { lab }
}

#[test]
fn heartbeats_of_an_old_log_still_fold_into_the_executor_stream() {
    let heartbeat = Event::ExecutorHeartbeat(event::ExecutorHeartbeat {
        executor: "e1".into(),
        run_ids: vec![r(1)],
    });
    let lab = given(&[heartbeat]).lab;
    assert_eq!(
        lab.stream_version(&StreamId::new(StreamType::Executor, "e1")),
        1
    );
}
