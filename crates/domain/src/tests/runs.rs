//! `start_run` and `cancel_run`.

use crate::RunPhase;
use crate::testing::*;
use runledger_types::command::{CancelRun, StartRun};
use runledger_types::event::{self, RunCancelRequested, RunRequested};
use runledger_types::{Command, Event, RejectionCode, RunStatus};

fn start_cmd(c: StartRun) -> Command {
    Command::StartRun(c)
}

fn assigned_r1() -> Vec<Event> {
    all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
    ])
}

#[test]
fn start_run_leases_a_free_venv() {
    let mut expected = vec![requested(r(1), OTHER)];
    expected.extend(assigned(r(1), v(1), m(1)));
    let lab = given(&world())
        .when(OTHER, start_cmd(start(r(1))))
        .then_expect(&expected);
    assert_eq!(
        lab.run(&r(1)).map(|run| run.phase),
        Some(RunPhase::Assigned)
    );
}

#[test]
fn start_run_copies_the_selector_and_env_into_run_requested() {
    let mut c = start(r(1));
    c.machine_id = Some(m(1));
    c.venv_id = Some(v(1));
    c.labels = labels(&["linux"]);
    c.env = [(
        runledger_types::EnvName::parse("X").expect("env"),
        "1".to_owned(),
    )]
    .into();
    let (events, _) = given(&world()).when(MEMBER, start_cmd(c.clone())).events();
    assert_eq!(
        events[0],
        Event::RunRequested(RunRequested {
            run_id: r(1),
            test_case_id: tc(1),
            user: actor_of(MEMBER),
            machine_id: c.machine_id,
            labels: c.labels,
            venv_id: c.venv_id,
            env: c.env,
            rerun_of: None,
            tests: Vec::new(),
            python: None,
            group: None,
        })
    );
}

#[test]
fn a_second_run_for_one_free_venv_is_queued() {
    let (_, lab) = given(&world())
        .when(MEMBER, start_cmd(start(r(1))))
        .events();
    let second = Given { lab }.when(MEMBER, start_cmd(start(r(2))));
    let lab = second.then_expect(&[requested(r(2), MEMBER), queued(r(2), "no_free_venv")]);
    assert_eq!(lab.queued_runs().collect::<Vec<_>>(), vec![r(2)]);
}

#[test]
fn labels_select_machines_carrying_all_of_them() {
    let history = all([
        world(),
        vec![machine(m(2), ADMIN, &["linux", "gpu"])],
        free_venv(v(2), m(2)),
    ]);
    let mut c = start(r(1));
    c.labels = labels(&["gpu", "linux"]);
    let (events, _) = given(&history).when(MEMBER, start_cmd(c.clone())).events();
    assert_eq!(events[1..], assigned(r(1), v(2), m(2)));
    c.labels = labels(&["gpu", "windows"]);
    let (events, _) = given(&history).when(MEMBER, start_cmd(c)).events();
    assert_eq!(events[1], queued(r(1), "no_matching_machine"));
}

#[test]
fn the_smallest_free_venv_id_wins() {
    let history = all([world(), free_venv(v(3), m(1)), free_venv(v(2), m(1))]);
    let (events, _) = given(&history)
        .when(MEMBER, start_cmd(start(r(1))))
        .events();
    assert_eq!(events[1..], assigned(r(1), v(1), m(1)));
    let mut c = start(r(1));
    c.venv_id = Some(v(3));
    let (events, _) = given(&history).when(MEMBER, start_cmd(c)).events();
    assert_eq!(events[1..], assigned(r(1), v(3), m(1)));
}

#[test]
fn a_venv_still_provisioning_makes_the_run_wait() {
    let history = all([
        base(),
        vec![machine(m(1), MEMBER, &[]), venv_added(v(1), m(1), "a")],
    ]);
    let (events, _) = given(&history)
        .when(MEMBER, start_cmd(start(r(1))))
        .events();
    assert_eq!(events[1], queued(r(1), "no_free_venv"));
}

#[test]
fn start_run_references_must_exist() {
    let rejection = given(&assigned_r1())
        .when(MEMBER, start_cmd(start(r(1))))
        .then_reject(RejectionCode::RunExists);
    assert!(rejection.message.contains(&r(1).to_string()));
    let mut c = start(r(2));
    c.test_case_id = tc(9);
    let rejection = given(&world())
        .when(MEMBER, start_cmd(c))
        .then_reject(RejectionCode::UnknownTestCase);
    assert_eq!(
        rejection.message,
        format!("test case {} is not defined", tc(9))
    );
    let mut c = start(r(2));
    c.machine_id = Some(m(9));
    given(&world())
        .when(MEMBER, start_cmd(c))
        .then_reject(RejectionCode::UnknownMachine);
    let mut c = start(r(2));
    c.venv_id = Some(v(9));
    given(&world())
        .when(MEMBER, start_cmd(c))
        .then_reject(RejectionCode::UnknownVenv);
}

#[test]
fn start_run_refuses_unusable_venvs_and_machines() {
    let retired = all([
        world(),
        vec![Event::MachineRetired(event::MachineRetired {
            machine_id: m(1),
        })],
    ]);
    let mut by_machine = start(r(2));
    by_machine.machine_id = Some(m(1));
    given(&retired)
        .when(MEMBER, start_cmd(by_machine))
        .then_reject(RejectionCode::MachineRetired);
    let mut by_venv = start(r(2));
    by_venv.venv_id = Some(v(1));
    given(&retired)
        .when(MEMBER, start_cmd(by_venv.clone()))
        .then_reject(RejectionCode::MachineRetired);
    let removed = all([
        world(),
        vec![Event::VenvRemoved(event::VenvRemoved { venv_id: v(1) })],
    ]);
    given(&removed)
        .when(MEMBER, start_cmd(by_venv.clone()))
        .then_reject(RejectionCode::VenvRemoved);
    let broken = all([world(), vec![venv_added(v(2), m(1), "b"), broken(v(2))]]);
    let mut by_broken = start(r(2));
    by_broken.venv_id = Some(v(2));
    given(&broken)
        .when(MEMBER, start_cmd(by_broken))
        .then_reject(RejectionCode::VenvBroken);
    let two_machines = all([world(), vec![machine(m(2), MEMBER, &[])]]);
    by_venv.machine_id = Some(m(2));
    let rejection = given(&two_machines)
        .when(MEMBER, start_cmd(by_venv))
        .then_reject(RejectionCode::VenvMachineMismatch);
    assert!(rejection.message.contains(&m(2).to_string()));
}

fn broken(id: runledger_types::VenvId) -> Event {
    Event::VenvProvisioningFailed(event::VenvProvisioningFailed {
        venv_id: id,
        reason: "boom".into(),
        output_tail: String::new(),
    })
}

fn cancel(reason: Option<&str>) -> Command {
    Command::CancelRun(CancelRun {
        run_id: r(1),
        reason: reason.map(Into::into),
    })
}

#[test]
fn cancelling_a_queued_run_finishes_it_and_leaves_the_queue() {
    let history = all([
        base(),
        vec![requested(r(1), MEMBER), queued(r(1), "no_matching_machine")],
    ]);
    let lab = given(&history)
        .when(MEMBER, cancel(Some("not needed")))
        .then_expect(&[finished(r(1), RunStatus::Cancelled, Some("not needed"))]);
    assert_eq!(lab.queue_len(), 0);
}

#[test]
fn cancelling_an_assigned_run_releases_its_venv_to_the_next_run() {
    let history = all([
        assigned_r1(),
        vec![requested(r(2), OTHER), queued(r(2), "no_free_venv")],
    ]);
    let mut expected = vec![
        finished(r(1), RunStatus::Cancelled, None),
        released(v(1), r(1)),
    ];
    expected.extend(assigned(r(2), v(1), m(1)));
    given(&history)
        .when(ADMIN, cancel(None))
        .then_expect(&expected);
}

#[test]
fn cancelling_a_running_run_asks_the_executor_once() {
    let running = all([assigned_r1(), vec![started(r(1), "e1")]]);
    let request = Event::RunCancelRequested(RunCancelRequested {
        run_id: r(1),
        reason: Some("stop".into()),
    });
    given(&running)
        .when(MEMBER, cancel(Some("stop")))
        .then_expect(std::slice::from_ref(&request));
    given(&all([running, vec![request]]))
        .when(MEMBER, cancel(None))
        .then_reject(RejectionCode::CancelAlreadyRequested);
}

#[test]
fn cancelling_a_finished_or_unknown_run_is_refused() {
    let done = all([
        assigned_r1(),
        vec![
            finished(r(1), RunStatus::Passed, None),
            released(v(1), r(1)),
        ],
    ]);
    given(&done)
        .when(MEMBER, cancel(None))
        .then_reject(RejectionCode::RunFinished);
    let rejection = given(&world())
        .when(MEMBER, cancel(None))
        .then_reject(RejectionCode::UnknownRun);
    assert!(rejection.message.contains(&r(1).to_string()));
}

fn with_env(names: &[&str]) -> Command {
    let mut c = start(r(1));
    c.env = names
        .iter()
        .map(|name| {
            (
                runledger_types::EnvName::parse(*name).expect("env"),
                "x".to_owned(),
            )
        })
        .collect();
    start_cmd(c)
}

#[test]
fn a_run_may_set_only_the_env_its_test_case_lets_it() {
    // tc(1) lets runs set X, and nothing else.
    given(&world()).when(MEMBER, with_env(&["X"])).events();
    let rejection = given(&world())
        .when(MEMBER, with_env(&["X", "TARGET"]))
        .then_reject(RejectionCode::EnvNotOverridable);
    assert!(
        rejection.message.contains("TARGET"),
        "{}",
        rejection.message
    );
    assert!(
        rejection.message.contains("overridable: X"),
        "{}",
        rejection.message
    );
}

#[test]
fn loader_and_interpreter_variables_are_never_overridable_by_a_run() {
    for name in [
        "LD_PRELOAD",
        "BASH_ENV",
        "PATH",
        "PYTHONPATH",
        "PYTEST_ADDOPTS",
    ] {
        // Even from a test case recorded before its list was checked.
        let mut events = world();
        if let Some(Event::TestCaseDefined(defined)) = events
            .iter_mut()
            .find(|e| matches!(e, Event::TestCaseDefined(d) if d.test_case_id == tc(1)))
        {
            defined
                .env_overridable
                .insert(runledger_types::EnvName::parse(name).expect("env"));
        }
        given(&events)
            .when(ADMIN, with_env(&[name]))
            .then_reject(RejectionCode::EnvNotOverridable);
    }
}

#[test]
fn one_actor_may_queue_only_so_many_runs() {
    let mut lab = crate::Lab::new();
    for event in world() {
        crate::evolve(&mut lab, &event);
    }
    let queued = |n: u128| {
        let mut c = start(r(1000 + n));
        c.labels = labels(&["no-such-machine"]);
        start_cmd(c)
    };
    let limit = u128::from(crate::MAX_QUEUED_RUNS_PER_ACTOR);
    for n in 0..limit {
        apply(&mut lab, MEMBER, &queued(n)).expect("queued");
    }
    assert_eq!(
        lab.queued_by(&actor_of(MEMBER)),
        crate::MAX_QUEUED_RUNS_PER_ACTOR
    );
    let refused = apply(&mut lab, MEMBER, &queued(limit)).expect_err("over the cap");
    assert_eq!(refused.code, RejectionCode::TooManyQueuedRuns);
    // Another actor is not held back, and a run that leaves the queue makes room.
    apply(&mut lab, OTHER, &queued(limit + 1)).expect("another actor");
    let cancel = Command::CancelRun(CancelRun {
        run_id: r(1000),
        reason: None,
    });
    apply(&mut lab, MEMBER, &cancel).expect("cancelled");
    apply(&mut lab, MEMBER, &queued(limit + 2)).expect("room again");
}
