//! The executor-only layer over the domain's fold: attempts of lost executors, runs an executor
//! started, and the Jenkins builds of runs that ended in error.

use super::{fold, lab};
use crate::view::LabView;
use runledger_types::event::{
    JenkinsBuildQueued, RunAssigned, RunFinished, RunQueued, RunStarted, TestCaseDefined,
};
use runledger_types::jenkins::{JenkinsJob, JenkinsJobName, JenkinsUrl};
use runledger_types::{Event, MachineId, RunId, RunStatus, Text, VenvId};

fn started(run_id: RunId, executor: &str) -> Event {
    Event::RunStarted(RunStarted {
        run_id,
        executor: executor.into(),
    })
}

fn assigned(run_id: RunId, venv_id: Option<VenvId>, machine_id: Option<MachineId>) -> Event {
    Event::RunAssigned(RunAssigned {
        run_id,
        venv_id,
        machine_id,
        attempt: 2,
    })
}

fn finished(run_id: RunId, status: RunStatus, error_code: Option<&str>) -> Event {
    Event::RunFinished(RunFinished {
        run_id,
        status,
        exit_code: None,
        summary: None,
        reason: None,
        error_code: error_code.map(str::to_owned),
        tests: Vec::new(),
    })
}

fn apply_all(view: &mut LabView, events: &[Event]) {
    for event in events {
        let next = view.position() + 1;
        assert!(view.apply(next, event));
    }
}

#[test]
fn a_retried_attempt_is_abandoned_until_a_new_one_starts_on_its_machine() {
    let lab = lab("10.0.0.5");
    let (run_id, machine_id) = (lab.run_id, lab.machine_id);
    let mut view = fold(&lab.events);
    apply_all(&mut view, &[started(run_id, "ex-1")]);
    assert_eq!(view.runs_started_by("ex-1"), [run_id]);
    assert!(view.runs_started_by("ex-2").is_empty());
    let queued = Event::RunQueued(RunQueued {
        run_id,
        reason: "executor_lost".into(),
    });
    apply_all(&mut view, &[queued]);
    assert!(view.runs_started_by("ex-1").is_empty(), "queued again");
    let run = view.run(run_id).expect("open");
    assert!(run.assignment.is_none() && run.executor.is_none());
    let abandoned = view.abandoned_by("ex-1");
    assert_eq!(abandoned.len(), 1);
    assert_eq!(
        (abandoned[0].0, abandoned[0].1.machine_id),
        (run_id, machine_id)
    );
    assert_eq!(
        view.lost_attempt_machine(run_id).map(|m| m.machine_id),
        Some(machine_id)
    );

    apply_all(
        &mut view,
        &[assigned(run_id, Some(lab.venv_id), Some(machine_id))],
    );
    assert!(!view.abandoned_by("ex-1").is_empty(), "not started yet");
    apply_all(&mut view, &[started(run_id, "ex-2")]);
    assert!(
        view.abandoned_by("ex-1").is_empty(),
        "ex-2 ends the leftovers"
    );
    assert_eq!(view.runs_started_by("ex-2"), [run_id]);
}

#[test]
fn a_run_ended_by_a_lost_executor_is_abandoned_and_then_forgotten_but_for_its_status() {
    let lab = lab("10.0.0.5");
    let run_id = lab.run_id;
    let mut view = fold(&lab.events);
    apply_all(&mut view, &[started(run_id, "ex-1")]);
    let lost = finished(run_id, RunStatus::Error, Some("executor_lost"));
    apply_all(&mut view, &[lost]);
    assert!(view.run(run_id).is_none());
    assert_eq!(view.finished(run_id), Some(RunStatus::Error));
    assert_eq!(view.abandoned_by("ex-1").len(), 1);
    assert!(view.ended_jenkins(run_id).is_none(), "not a Jenkins run");
}

#[test]
fn an_errored_jenkins_run_keeps_its_build_to_stop() {
    let lab = lab("10.0.0.5");
    let mut events = lab.events.clone();
    for event in &mut events {
        if let Event::TestCaseDefined(TestCaseDefined {
            command, jenkins, ..
        }) = event
        {
            *command = None;
            *jenkins = Some(JenkinsJob {
                url: JenkinsUrl::parse("http://127.0.0.1:8080/").expect("url"),
                job: JenkinsJobName::parse("team/nightly").expect("job"),
                parameters: Default::default(),
                credentials: None,
            });
        }
    }
    // The fixture's run holds a venv; a second run follows a Jenkins build.
    let mut view = fold(&events);
    let run_id = RunId::new();
    let Some(Event::RunRequested(requested)) = events
        .iter()
        .find(|event| matches!(event, Event::RunRequested(_)))
    else {
        panic!("the fixture requests a run")
    };
    let mut requested = requested.clone();
    requested.run_id = run_id;
    let queue_item = Text::parse("http://127.0.0.1:8080/queue/item/7/").expect("item");
    let jenkins_queued = Event::JenkinsBuildQueued(JenkinsBuildQueued {
        run_id,
        queue_item: queue_item.clone(),
    });
    apply_all(
        &mut view,
        &[
            Event::RunRequested(requested),
            assigned(run_id, None, None),
            started(run_id, "ex-1"),
            jenkins_queued,
        ],
    );
    let position = view.position() - 2;
    let crate::view::Resolved::Jenkins(resolved) = view.resolve(run_id).expect("resolves") else {
        panic!("a Jenkins run")
    };
    assert_eq!(resolved.assignment.position, position);
    assert_eq!(resolved.queue_item.as_ref(), Some(&queue_item));

    apply_all(
        &mut view,
        &[finished(run_id, RunStatus::Error, Some("executor_lost"))],
    );
    let ended = view.ended_jenkins(run_id).expect("kept");
    assert_eq!(ended.queue_item.as_ref(), Some(&queue_item));
    assert_eq!(ended.job.job.as_str(), "team/nightly");
    assert!(
        view.abandoned_by("ex-1").is_empty(),
        "no machine to clean up"
    );
    let passed = finished(lab.run_id, RunStatus::Passed, None);
    apply_all(&mut view, &[passed]);
    assert!(view.ended_jenkins(lab.run_id).is_none());
}
