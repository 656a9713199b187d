//! FIFO assignment of freed venvs, label changes, retired machines.

use crate::testing::*;
use runledger_types::command::{ReportRunFinished, ReportVenvProvisioned, StartRun, UpdateMachine};
use runledger_types::event::MachineUpdated;
use runledger_types::{Command, Event, RejectionCode, RunId, RunStatus};

fn finish(run_id: RunId) -> Command {
    Command::ReportRunFinished(ReportRunFinished {
        run_id,
        status: RunStatus::Passed,
        exit_code: None,
        summary: None,
        reason: None,
        error_code: None,
        tests: Vec::new(),
    })
}

fn start_with(run_id: RunId, tags: &[&str]) -> Command {
    Command::StartRun(StartRun {
        labels: labels(tags),
        ..start(run_id)
    })
}

fn holder(lab: &crate::Lab, run_id: RunId) -> Option<runledger_types::VenvId> {
    lab.run(&run_id).and_then(|run| run.venv_id)
}

#[test]
fn three_queued_runs_are_served_first_in_first_out() {
    let mut lab = given(&world()).lab;
    for n in 1..=4 {
        apply(&mut lab, MEMBER, &Command::StartRun(start(r(n)))).expect("started");
    }
    assert_eq!(
        lab.queued_runs().collect::<Vec<_>>(),
        vec![r(2), r(3), r(4)]
    );
    for n in 1..=3 {
        let events = apply(&mut lab, EXEC, &finish(r(n))).expect("finished");
        let mut expected = vec![
            finished(r(n), RunStatus::Passed, None),
            released(v(1), r(n)),
        ];
        expected.extend(assigned(r(n + 1), v(1), m(1)));
        assert_eq!(events, expected);
    }
    assert_eq!(lab.queue_len(), 0);
    assert_eq!(holder(&lab, r(4)), Some(v(1)));
}

#[test]
fn a_freed_venv_skips_queued_runs_it_cannot_serve() {
    let history = all([
        world(),
        vec![machine(m(2), ADMIN, &["gpu"]), venv_added(v(2), m(2), "g")],
    ]);
    let mut lab = given(&history).lab;
    apply(&mut lab, MEMBER, &Command::StartRun(start(r(1)))).expect("r1");
    apply(&mut lab, MEMBER, &start_with(r(2), &["gpu"])).expect("r2");
    apply(&mut lab, MEMBER, &Command::StartRun(start(r(3)))).expect("r3");
    let events = apply(&mut lab, EXEC, &finish(r(1))).expect("finished");
    assert_eq!(events[2..], assigned(r(3), v(1), m(1)));
    assert_eq!(lab.queued_runs().collect::<Vec<_>>(), vec![r(2)]);
    let provisioned = Command::ReportVenvProvisioned(ReportVenvProvisioned {
        venv_id: v(2),
        python_version: None,
    });
    let events = apply(&mut lab, EXEC, &provisioned).expect("provisioned");
    assert_eq!(events[1..], assigned(r(2), v(2), m(2)));
}

#[test]
fn a_provisioned_venv_goes_to_the_oldest_run_that_can_use_it() {
    let history = all([
        base(),
        vec![machine(m(1), MEMBER, &[]), venv_added(v(1), m(1), "a")],
        vec![requested(r(1), MEMBER), queued(r(1), "no_free_venv")],
        vec![requested(r(2), MEMBER), queued(r(2), "no_free_venv")],
    ]);
    let command = Command::ReportVenvProvisioned(ReportVenvProvisioned {
        venv_id: v(1),
        python_version: None,
    });
    let mut expected = vec![provisioned(v(1))];
    expected.extend(assigned(r(1), v(1), m(1)));
    given(&history).when(EXEC, command).then_expect(&expected);
}

fn relabel(tags: &[&str]) -> Command {
    Command::UpdateMachine(UpdateMachine {
        labels: Some(labels(tags)),
        ..UpdateMachine::new(m(1))
    })
}

#[test]
fn new_labels_let_a_queued_run_take_a_free_venv() {
    let mut lab = given(&world()).lab;
    let events = apply(&mut lab, MEMBER, &start_with(r(1), &["gpu"])).expect("queued");
    assert_eq!(events[1], queued(r(1), "no_matching_machine"));
    let events = apply(&mut lab, MEMBER, &relabel(&["linux", "gpu"])).expect("relabelled");
    let mut expected = vec![Event::MachineUpdated(MachineUpdated {
        machine_id: m(1),
        labels: Some(labels(&["linux", "gpu"])),
        ..MachineUpdated::default()
    })];
    expected.extend(assigned(r(1), v(1), m(1)));
    assert_eq!(events, expected);
}

#[test]
fn runs_for_a_retired_machine_stay_queued() {
    let mut lab = given(&world()).lab;
    apply(&mut lab, MEMBER, &Command::StartRun(start(r(1)))).expect("r1");
    let only_m1 = Command::StartRun(StartRun {
        machine_id: Some(m(1)),
        ..start(r(2))
    });
    apply(&mut lab, MEMBER, &only_m1).expect("r2");
    let retire =
        Command::RetireMachine(runledger_types::command::RetireMachine { machine_id: m(1) });
    apply(&mut lab, MEMBER, &retire).expect("retired");
    let events = apply(&mut lab, EXEC, &finish(r(1))).expect("finished");
    assert_eq!(events.len(), 2, "the freed venv is on a retired machine");
    assert_eq!(lab.queued_runs().collect::<Vec<_>>(), vec![r(2)]);
    let again = Command::StartRun(StartRun {
        machine_id: Some(m(1)),
        ..start(r(3))
    });
    assert_eq!(
        apply(&mut lab, MEMBER, &again).map_err(|e| e.code),
        Err(RejectionCode::MachineRetired)
    );
}
