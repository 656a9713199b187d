use super::*;
use crate::ssh::SshAuth;
use runledger_secrets::{Keyring, SecretKey};
use runledger_types::event::{
    HostKeyPinned, MachineRegistered, MachineRetired, MachineUpdated, RunAssigned,
    RunCancelRequested, RunFinished, RunRequested, RunStarted, TestCaseDefined, VenvAdded,
    VenvLeased, VenvProvisioned, VenvRemoved,
};
use runledger_types::{
    Actor, EnvName, Host, HostKeyFingerprint, Line, MachineName, Os, Port, RemotePath, RemoteUser,
    SecretString, Text, VenvName,
};
use std::collections::{BTreeMap, BTreeSet};

mod leftovers;

const FINGERPRINT: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

struct Lab {
    keyring: Keyring,
    machine_id: MachineId,
    venv_id: VenvId,
    test_case_id: TestCaseId,
    run_id: RunId,
    events: Vec<Event>,
}

fn lab(host: &str) -> Lab {
    let keyring = Keyring::new(SecretKey::insecure_dev_key(), Vec::new());
    let password = keyring.seal(&SecretString::new("hunter2")).expect("seals");
    let (machine_id, venv_id) = (MachineId::new(), VenvId::new());
    let (test_case_id, run_id) = (TestCaseId::new(), RunId::new());
    let env = |k: &str, v: &str| BTreeMap::from([(EnvName::parse(k).expect("env"), v.to_owned())]);
    let events = vec![
        Event::MachineRegistered(MachineRegistered {
            machine_id,
            name: MachineName::parse("box").expect("name"),
            host: Host::parse(host).expect("host"),
            port: Port::parse(2222).expect("port"),
            os: Os::Linux,
            username: RemoteUser::parse("lab").expect("user"),
            owner: Actor::parse("admin").expect("actor"),
            password: Some(password),
            private_key: None,
            host_key: None,
            labels: BTreeSet::new(),
        }),
        Event::VenvAdded(VenvAdded {
            venv_id,
            machine_id,
            name: VenvName::parse("py3").expect("venv"),
            path: RemotePath::parse("~/.runledger/venvs/py3").expect("path"),
            python: Line::parse("python3").expect("python"),
            requirements: vec![Line::parse("pytest").expect("req")],
        }),
        Event::VenvProvisioned(VenvProvisioned {
            venv_id,
            python_version: None,
        }),
        Event::TestCaseDefined(TestCaseDefined {
            test_case_id,
            name: MachineName::parse("suite").expect("name"),
            description: String::new(),
            command: Some(Text::parse("pytest -q").expect("command")),
            jenkins: None,
            files: Vec::new(),
            env: env("A", "1"),
            env_overridable: [EnvName::parse("B").expect("name")].into(),
            timeout_s: 60,
            junit_xml: None,
            max_output_bytes: runledger_types::command::DEFAULT_MAX_OUTPUT_BYTES,
            retries: 1,
        }),
        Event::RunRequested(RunRequested {
            run_id,
            test_case_id,
            user: Actor::parse("admin").expect("actor"),
            machine_id: None,
            labels: BTreeSet::new(),
            venv_id: None,
            env: env("B", "2"),
            rerun_of: None,
            tests: Vec::new(),
            python: None,
            group: None,
        }),
        Event::VenvLeased(VenvLeased { venv_id, run_id }),
        Event::RunAssigned(RunAssigned {
            run_id,
            venv_id: Some(venv_id),
            machine_id: Some(machine_id),
            attempt: 1,
        }),
    ];
    Lab {
        keyring,
        machine_id,
        venv_id,
        test_case_id,
        run_id,
        events,
    }
}

fn fold(events: &[Event]) -> LabView {
    let mut view = LabView::new();
    for (i, event) in events.iter().enumerate() {
        assert!(view.apply(i64::try_from(i).expect("small") + 1, event));
    }
    view
}

#[test]
fn an_assigned_run_resolves_to_everything_a_driver_needs() {
    let lab = lab("10.0.0.5");
    let view = fold(&lab.events);
    assert_eq!(view.position(), 7);
    let run = view.resolve_run(lab.run_id).expect("resolves");
    assert_eq!(run.assignment.attempt, 1);
    assert_eq!(run.assignment.position, 7);
    assert_eq!(run.test_case.test_case_id, lab.test_case_id);
    assert_eq!(
        run.test_case.command.as_ref().map(|c| c.as_str()),
        Some("pytest -q")
    );
    assert_eq!(run.run_env.len(), 1);
    assert_eq!(run.venv.venv_id, lab.venv_id);
    assert_eq!(run.venv.status, VenvStatus::Leased(lab.run_id));
    assert_eq!(run.machine.machine_id, lab.machine_id);
    assert!(!run.cancel_requested);
    let venv = view.resolve_venv(lab.venv_id).expect("resolves");
    assert_eq!(venv.venv.requirements.len(), 1);
    assert_eq!(venv.machine.port.get(), 2222);
}

#[test]
fn credentials_stay_sealed_until_unsealed_with_the_keyring() {
    let lab = lab("10.0.0.5");
    let view = fold(&lab.events);
    let run = view.resolve_run(lab.run_id).expect("resolves");
    assert!(!format!("{run:?}").contains("hunter2"));
    let target = unseal_target(&lab.keyring, &run.machine).expect("opens");
    assert!(!format!("{target:?}").contains("hunter2"));
    let Target::Ssh(ssh) = target else {
        panic!("not local")
    };
    assert_eq!(ssh.auth, SshAuth::Password("hunter2".into()));
    assert_eq!((ssh.host.as_str(), ssh.port), ("10.0.0.5", 2222));
    assert_eq!(ssh.pinned_host_key, None);
    let other = Keyring::new(SecretKey::from_bytes(&[7; 32]).expect("key"), Vec::new());
    assert!(matches!(
        unseal_target(&other, &run.machine),
        Err(UnsealError::Secrets { .. })
    ));
}

#[test]
fn machine_updates_pins_and_retirement_are_folded() {
    let lab = lab("10.0.0.5");
    let mut view = fold(&lab.events);
    let key = lab
        .keyring
        .seal(&SecretString::new("-----BEGIN OPENSSH PRIVATE KEY-----"))
        .expect("seals");
    view.apply(
        8,
        &Event::MachineUpdated(MachineUpdated {
            machine_id: lab.machine_id,
            host: Some(Host::parse("10.0.0.6").expect("host")),
            private_key: Some(key),
            ..MachineUpdated::default()
        }),
    );
    let fingerprint = HostKeyFingerprint::parse(FINGERPRINT).expect("fingerprint");
    view.apply(
        9,
        &Event::HostKeyPinned(HostKeyPinned {
            machine_id: lab.machine_id,
            fingerprint,
        }),
    );
    let machine = view.machine(lab.machine_id).expect("known").clone();
    assert_eq!(machine.host.as_str(), "10.0.0.6");
    assert!(
        machine.password.is_some(),
        "an update keeps what it does not name"
    );
    let Ok(Target::Ssh(ssh)) = unseal_target(&lab.keyring, &machine) else {
        panic!("ssh target")
    };
    assert!(matches!(ssh.auth, SshAuth::PrivateKey(_)), "a key wins");
    assert_eq!(ssh.pinned_host_key.as_deref(), Some(FINGERPRINT));
    let retired = Event::MachineRetired(MachineRetired {
        machine_id: lab.machine_id,
    });
    view.apply(10, &retired);
    assert!(view.machine(lab.machine_id).expect("known").retired);
    assert!(view.resolve_run(lab.run_id).is_ok(), "assigned runs go on");
}

#[test]
fn the_local_host_needs_no_credential() {
    let lab = lab("local");
    let view = fold(&lab.events);
    let machine = view.machine(lab.machine_id).expect("known");
    assert!(matches!(
        unseal_target(&lab.keyring, &machine),
        Ok(Target::Local)
    ));
}

#[test]
fn runs_move_through_cancel_retry_and_finish() {
    let lab = lab("10.0.0.5");
    let mut view = fold(&lab.events);
    assert!(!view.apply(3, &lab.events[2]), "old positions are ignored");
    let run_id = lab.run_id;
    view.apply(
        8,
        &Event::RunStarted(RunStarted {
            run_id,
            executor: "ex-1".into(),
        }),
    );
    let cancel = RunCancelRequested {
        run_id,
        reason: None,
    };
    view.apply(9, &Event::RunCancelRequested(cancel));
    assert!(view.resolve_run(run_id).expect("resolves").cancel_requested);
    let retry = RunAssigned {
        run_id,
        venv_id: Some(lab.venv_id),
        machine_id: Some(lab.machine_id),
        attempt: 2,
    };
    view.apply(10, &Event::RunAssigned(retry));
    let run = view.resolve_run(run_id).expect("resolves");
    assert_eq!((run.assignment.attempt, run.assignment.position), (2, 10));
    assert!(!run.cancel_requested && view.run(run_id).expect("open").executor.is_none());
    let finished = RunFinished {
        run_id,
        status: RunStatus::Passed,
        exit_code: Some(0),
        summary: None,
        reason: None,
        error_code: None,
        tests: Vec::new(),
    };
    view.apply(11, &Event::RunFinished(finished));
    assert_eq!(
        view.resolve_run(run_id),
        Err(ViewError::RunFinished {
            run_id,
            status: RunStatus::Passed
        })
    );
    view.apply(
        12,
        &Event::VenvRemoved(VenvRemoved {
            venv_id: lab.venv_id,
        }),
    );
    assert_eq!(
        view.resolve_venv(lab.venv_id),
        Err(ViewError::UnknownVenv(lab.venv_id))
    );
    let unknown = RunId::new();
    assert_eq!(
        view.resolve_run(unknown),
        Err(ViewError::UnknownRun(unknown))
    );
}

#[test]
fn a_run_keeps_only_the_env_its_test_case_lets_it_set() {
    let mut lab = lab("10.0.0.5");
    for event in &mut lab.events {
        if let Event::RunRequested(requested) = event {
            requested.env.insert(
                EnvName::parse("LD_PRELOAD").expect("name"),
                "/tmp/x.so".into(),
            );
            requested
                .env
                .insert(EnvName::parse("OTHER").expect("name"), "1".into());
        }
    }
    let run = fold(&lab.events).resolve_run(lab.run_id).expect("resolves");
    let names: Vec<&str> = run.run_env.keys().map(|name| name.as_str()).collect();
    assert_eq!(names, ["B"]);
}
