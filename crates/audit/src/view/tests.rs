//! The views over a lab folded from events, as `runledger audit state` prints them.

use super::*;
use crate::{Snapshot, StateReport, Subject};
use runledger_domain::evolve;
use runledger_types::command::{DEFAULT_MAX_OUTPUT_BYTES, OutputStream};
use runledger_types::event::{
    MachineRegistered, MachineRetired, RunAssigned, RunFinished, RunOutput, RunQueued,
    RunRequested, RunStarted, TestCaseDefined, VenvAdded, VenvLeased, VenvProvisioned,
    VenvProvisioningFailed,
};
use runledger_types::{
    Event, Host, Line, MachineName, Port, RemotePath, RemoteUser, Text, VenvName,
};
use serde_json::{Value, json};
use uuid::Uuid;

mod pool;

const LINUX: MachineId = MachineId(Uuid::from_u128(1));
const WINDOWS: MachineId = MachineId(Uuid::from_u128(2));
const TEST_CASE: TestCaseId = TestCaseId(Uuid::from_u128(3));

fn venv_id(n: u128) -> VenvId {
    VenvId(Uuid::from_u128(0x100 + n))
}

fn run_id(n: u128) -> RunId {
    RunId(Uuid::from_u128(0x200 + n))
}

fn machine(machine_id: MachineId, label: &str) -> Event {
    Event::MachineRegistered(MachineRegistered {
        machine_id,
        name: MachineName::parse(label).expect("name"),
        host: Host::parse("10.0.0.5").expect("host"),
        port: Port::parse(22).expect("port"),
        os: Os::Linux,
        username: RemoteUser::parse("lab").expect("user"),
        owner: Actor::parse("ada").expect("actor"),
        password: None,
        private_key: None,
        host_key: None,
        labels: [Label::parse(label).expect("label")].into(),
    })
}

/// A venv added to `machine_id` and, unless `provisioned` is false, provisioned.
fn venv(n: u128, machine_id: MachineId, provisioned: bool) -> Vec<Event> {
    let added = Event::VenvAdded(VenvAdded {
        venv_id: venv_id(n),
        machine_id,
        name: VenvName::parse(format!("venv{n}")).expect("venv"),
        path: RemotePath::parse(format!("~/venvs/venv{n}")).expect("path"),
        python: Line::parse("python3").expect("python"),
        requirements: Vec::new(),
    });
    let provisioned = provisioned.then(|| {
        Event::VenvProvisioned(VenvProvisioned {
            venv_id: venv_id(n),
            python_version: None,
        })
    });
    [Some(added), provisioned].into_iter().flatten().collect()
}

fn test_case() -> Event {
    Event::TestCaseDefined(TestCaseDefined {
        test_case_id: TEST_CASE,
        name: MachineName::parse("suite").expect("name"),
        description: String::new(),
        command: Some(Text::parse("pytest -q").expect("command")),
        jenkins: None,
        files: Vec::new(),
        env: Default::default(),
        env_overridable: Default::default(),
        timeout_s: 60,
        junit_xml: None,
        max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        retries: 0,
    })
}

/// `run_requested` of run `n` by `user`, for venvs with `label` or exactly `venv`.
fn requested(n: u128, user: &str, label: Option<&str>, venv: Option<VenvId>) -> Event {
    Event::RunRequested(RunRequested {
        run_id: run_id(n),
        test_case_id: TEST_CASE,
        user: Actor::parse(user).expect("actor"),
        machine_id: None,
        labels: label
            .map(|l| Label::parse(l).expect("label"))
            .into_iter()
            .collect(),
        venv_id: venv,
        env: Default::default(),
        rerun_of: None,
        tests: Vec::new(),
        python: None,
        group: None,
    })
}

fn queued(n: u128) -> Event {
    Event::RunQueued(RunQueued {
        run_id: run_id(n),
        reason: "no_free_venv".into(),
    })
}

fn lab_of(events: &[Event]) -> Lab {
    let mut lab = Lab::new();
    for event in events {
        evolve(&mut lab, event);
    }
    lab
}

fn run_json(lab: &Lab, n: u128) -> Value {
    let run = lab.run(&run_id(n)).expect("known");
    serde_json::to_value(RunView::new(run_id(n), run)).expect("serialises")
}

/// One machine with venv 0 free, a test case, and run 1 requested for venv 0.
fn requested_lab() -> Vec<Event> {
    let mut events = vec![machine(LINUX, "linux"), test_case()];
    events.extend(venv(0, LINUX, true));
    events.push(requested(1, "ada", None, Some(venv_id(0))));
    events
}

#[test]
fn a_run_shows_its_phase_status_selector_and_attempt() {
    let mut events = requested_lab();
    let requested = run_json(&lab_of(&events), 1);
    assert_eq!(
        (&requested["phase"], &requested["status"]),
        (&json!("requested"), &Value::Null)
    );
    assert_eq!(
        requested["selector"],
        json!({"machine_id": null, "labels": [], "venv_id": venv_id(0)})
    );
    assert_eq!(requested["user"], "ada");

    events.push(Event::VenvLeased(VenvLeased {
        venv_id: venv_id(0),
        run_id: run_id(1),
    }));
    events.push(Event::RunAssigned(RunAssigned {
        run_id: run_id(1),
        venv_id: Some(venv_id(0)),
        machine_id: Some(LINUX),
        attempt: 1,
    }));
    events.push(Event::RunStarted(RunStarted {
        run_id: run_id(1),
        executor: "e1".into(),
    }));
    events.push(Event::RunOutput(RunOutput {
        run_id: run_id(1),
        seq: 3,
        stream: OutputStream::Stdout,
        text: "1 passed\n".into(),
    }));
    let running = run_json(&lab_of(&events), 1);
    assert_eq!(
        (&running["phase"], &running["status"]),
        (&json!("running"), &json!("running"))
    );
    assert_eq!(
        (&running["venv_id"], &running["machine_id"]),
        (&json!(venv_id(0)), &json!(LINUX))
    );
    assert_eq!(
        (&running["attempt"], &running["executor"]),
        (&json!(1), &json!("e1"))
    );
    assert_eq!(running["last_output_seq"], 3);
    assert_eq!(running["cancel_requested"], false);

    events.push(Event::RunFinished(RunFinished {
        run_id: run_id(1),
        status: RunStatus::Failed,
        exit_code: Some(1),
        summary: None,
        reason: None,
        error_code: None,
        tests: Vec::new(),
    }));
    let finished = run_json(&lab_of(&events), 1);
    assert_eq!(
        (&finished["phase"], &finished["status"]),
        (&json!("finished"), &json!("failed"))
    );
    assert_eq!(
        finished["executor"], "e1",
        "a finished run keeps who ran it"
    );
}

#[test]
fn a_venv_shows_its_status_and_the_run_leasing_it() {
    let mut events = vec![machine(LINUX, "linux")];
    events.extend(venv(0, LINUX, false));
    let venv_json = |events: &[Event]| {
        let lab = lab_of(events);
        let venv = lab.venv(&venv_id(0)).expect("known");
        serde_json::to_value(VenvView::new(venv_id(0), venv)).expect("serialises")
    };
    let provisioning = venv_json(&events);
    assert_eq!(
        provisioning,
        json!({"venv_id": venv_id(0), "machine_id": LINUX, "name": "venv0",
               "status": "provisioning", "leased_by": null})
    );
    let mut leased = events.clone();
    leased.push(Event::VenvProvisioned(VenvProvisioned {
        venv_id: venv_id(0),
        python_version: None,
    }));
    leased.push(Event::VenvLeased(VenvLeased {
        venv_id: venv_id(0),
        run_id: run_id(1),
    }));
    let leased = venv_json(&leased);
    assert_eq!(
        (&leased["status"], &leased["leased_by"]),
        (&json!("leased"), &json!(run_id(1)))
    );
    events.push(Event::VenvProvisioningFailed(VenvProvisioningFailed {
        venv_id: venv_id(0),
        reason: "pip failed".into(),
        output_tail: String::new(),
    }));
    assert_eq!(venv_json(&events)["status"], "broken");
}

#[test]
fn a_report_is_as_of_its_point_and_names_what_it_shows() {
    let snapshot = Snapshot {
        lab: lab_of(&requested_lab()),
        as_of: AsOf {
            position: 5,
            recorded_at: None,
        },
    };
    let report = StateReport::new(&snapshot, Subject::Venv(venv_id(0))).expect("exists");
    assert_eq!(report.as_of().position, 5);
    let value = serde_json::to_value(&report).expect("serialises");
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["as_of", "venv"]);
    assert_eq!(value["as_of"], json!({"position": 5, "recorded_at": null}));
    let run =
        serde_json::to_value(StateReport::new(&snapshot, Subject::Run(run_id(1)))).expect("json");
    assert_eq!(run["run"]["run_id"], json!(run_id(1)));
    assert!(StateReport::new(&snapshot, Subject::Run(run_id(7))).is_none());
    assert!(StateReport::new(&snapshot, Subject::Pool(WINDOWS)).is_none());
    assert_eq!(
        Subject::Pool(LINUX).to_string(),
        format!("machine {}", LINUX)
    );
    assert_eq!(
        Subject::Run(run_id(1)).to_string(),
        format!("run {}", run_id(1))
    );
}
