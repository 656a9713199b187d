//! Runs of Jenkins test cases: assigned without a venv, retried without a queue, and never
//! following two builds.

use crate::testing::*;
use crate::{JenkinsProgress, RunPhase};
use runledger_types::command::{
    CancelRun, ReportJenkinsBuild, ReportJenkinsQueued, ReportRunFinished, ReportRunStarted,
};
use runledger_types::event::{self, RunAssigned, RunFinished, RunQueued};
use runledger_types::jenkins::{JenkinsJob, JenkinsJobName, JenkinsUrl};
use runledger_types::{Command, Event, RejectionCode, RunStatus, Text};

/// `tc(1)` as a Jenkins job with `retries`.
fn jenkins_test_case(retries: u32) -> Event {
    let Event::TestCaseDefined(mut defined) = test_case(tc(1)) else {
        unreachable!("test_case gives test_case_defined")
    };
    defined.command = None;
    defined.retries = retries;
    defined.jenkins = Some(JenkinsJob {
        url: JenkinsUrl::parse("http://127.0.0.1:8080/").expect("url"),
        job: JenkinsJobName::parse("team/nightly").expect("job"),
        parameters: Default::default(),
        credentials: None,
    });
    Event::TestCaseDefined(defined)
}

fn assigned_without_venv(attempt: u32) -> Event {
    Event::RunAssigned(RunAssigned {
        run_id: r(1),
        venv_id: None,
        machine_id: None,
        attempt,
    })
}

fn queued_item(item: &str) -> Command {
    Command::ReportJenkinsQueued(ReportJenkinsQueued {
        run_id: r(1),
        queue_item: Text::parse(item).expect("text"),
    })
}

fn build(number: u64) -> Command {
    Command::ReportJenkinsBuild(ReportJenkinsBuild {
        run_id: r(1),
        number,
        url: Text::parse(format!(
            "http://127.0.0.1:8080/job/team/job/nightly/{number}/"
        ))
        .expect("text"),
    })
}

fn running(retries: u32) -> Vec<Event> {
    all([
        users(),
        vec![jenkins_test_case(retries)],
        vec![requested(r(1), MEMBER), assigned_without_venv(1)],
        vec![started(r(1), "e1")],
    ])
}

#[test]
fn a_jenkins_run_is_assigned_at_once_without_venv_or_machine() {
    let mut events = users();
    events.push(jenkins_test_case(0));
    let lab = given(&events)
        .when(MEMBER, Command::StartRun(start(r(1))))
        .then_expect(&[requested(r(1), MEMBER), assigned_without_venv(1)]);
    assert_eq!(
        lab.run(&r(1)).map(|run| run.phase),
        Some(RunPhase::Assigned)
    );
}

#[test]
fn a_jenkins_run_refuses_a_machine_selector() {
    let mut events = users();
    events.push(jenkins_test_case(0));
    let mut command = start(r(1));
    command.labels = labels(&["linux"]);
    given(&events)
        .when(MEMBER, Command::StartRun(command))
        .then_reject(RejectionCode::NotAJenkinsRun);
}

#[test]
fn the_queue_item_and_build_are_recorded_once() {
    let (events, lab) = given(&running(0))
        .when(EXEC, queued_item("http://127.0.0.1:8080/queue/item/7/"))
        .events();
    assert_eq!(events.len(), 1);
    // The same report again: nothing new. Another item: refused.
    given(&all([running(0), events.clone()]))
        .when(EXEC, queued_item("http://127.0.0.1:8080/queue/item/7/"))
        .then_expect(&[]);
    given(&all([running(0), events.clone()]))
        .when(EXEC, queued_item("http://127.0.0.1:8080/queue/item/8/"))
        .then_reject(RejectionCode::JenkinsBuildRecorded);
    assert!(
        lab.run(&r(1))
            .and_then(|run| run.jenkins.as_ref())
            .is_some_and(|j| j.queue_item.is_some() && j.build.is_none())
    );
    let (started_events, lab) = given(&all([running(0), events.clone()]))
        .when(EXEC, build(17))
        .events();
    let history = all([running(0), events, started_events]);
    given(&history).when(EXEC, build(17)).then_expect(&[]);
    given(&history)
        .when(EXEC, build(18))
        .then_reject(RejectionCode::JenkinsBuildRecorded);
    // Only the executor running the run may report.
    given(&history)
        .when(EXEC2, build(17))
        .then_reject(RejectionCode::ExecutorMismatch);
    assert_eq!(
        lab.run(&r(1)).and_then(|run| run.jenkins.clone()),
        Some(JenkinsProgress {
            queue_item: Some(Text::parse("http://127.0.0.1:8080/queue/item/7/").expect("text")),
            build: Some((
                17,
                Text::parse("http://127.0.0.1:8080/job/team/job/nightly/17/").expect("text")
            )),
        })
    );
}

#[test]
fn a_run_of_a_command_test_case_cannot_report_a_build() {
    let history = all([
        world(),
        vec![requested(r(1), MEMBER)],
        assigned(r(1), v(1), m(1)).to_vec(),
        vec![started(r(1), "e1")],
    ]);
    given(&history)
        .when(EXEC, build(1))
        .then_reject(RejectionCode::NotAJenkinsRun);
}

#[test]
fn an_infrastructure_error_is_retried_at_once_and_keeps_the_build() {
    let recorded = Event::JenkinsBuildStarted(event::JenkinsBuildStarted {
        run_id: r(1),
        number: 17,
        url: Text::parse("http://127.0.0.1:8080/job/team/job/nightly/17/").expect("text"),
    });
    let history = all([running(1), vec![recorded]]);
    let error = Command::ReportRunFinished(ReportRunFinished {
        run_id: r(1),
        status: RunStatus::Error,
        exit_code: None,
        summary: None,
        reason: Some("Jenkins did not answer".into()),
        error_code: Some("jenkins_unreachable".into()),
        tests: Vec::new(),
    });
    let lab = given(&history).when(EXEC, error.clone()).then_expect(&[
        Event::RunQueued(RunQueued {
            run_id: r(1),
            reason: "retrying: attempt 1 of 2 ended in error (Jenkins did not answer)".into(),
        }),
        assigned_without_venv(2),
    ]);
    let run = lab.run(&r(1)).expect("run");
    assert_eq!(run.phase, RunPhase::Assigned);
    assert_eq!(
        run.jenkins
            .as_ref()
            .and_then(|j| j.build.clone())
            .map(|b| b.0),
        Some(17)
    );
    // The second attempt, started by another executor, may end the run.
    let (events, _) = given(&history).when(EXEC, error.clone()).events();
    let second = all([history, events, vec![started(r(1), "e2")]]);
    given(&second)
        .when(EXEC2, error)
        .then_expect(&[Event::RunFinished(RunFinished {
            run_id: r(1),
            status: RunStatus::Error,
            exit_code: None,
            summary: None,
            reason: Some("Jenkins did not answer".into()),
            error_code: Some("jenkins_unreachable".into()),
            tests: Vec::new(),
        })]);
}

#[test]
fn an_assigned_jenkins_run_is_cancelled_at_once_and_a_running_one_by_the_executor() {
    let mut events = users();
    events.push(jenkins_test_case(0));
    events.extend([requested(r(1), MEMBER), assigned_without_venv(1)]);
    let cancel = Command::CancelRun(CancelRun {
        run_id: r(1),
        reason: None,
    });
    given(&events)
        .when(MEMBER, cancel.clone())
        .then_expect(&[finished(r(1), RunStatus::Cancelled, None)]);
    given(&running(0))
        .when(MEMBER, cancel)
        .then_expect(&[Event::RunCancelRequested(event::RunCancelRequested {
            run_id: r(1),
            reason: None,
        })]);
    // The claim works as for any run.
    given(&events)
        .when(
            EXEC,
            Command::ReportRunStarted(ReportRunStarted { run_id: r(1) }),
        )
        .then_expect(&[started(r(1), "e1")]);
}

#[test]
fn a_queue_item_or_build_on_another_origin_is_refused() {
    // The test case's server is http://127.0.0.1:8080/.
    for other in [
        "http://127.0.0.1:8081/queue/item/7/",
        "https://127.0.0.1:8080/queue/item/7/",
        "http://localhost:8080/queue/item/7/",
        "http://ci-bot:token@127.0.0.1:8080/queue/item/7/",
        "queue/item/7/",
    ] {
        let rejection = given(&running(0))
            .when(EXEC, queued_item(other))
            .then_reject(RejectionCode::JenkinsOriginMismatch);
        assert!(rejection.message.contains(other), "{rejection:?}");
    }
    let elsewhere = Command::ReportJenkinsBuild(ReportJenkinsBuild {
        run_id: r(1),
        number: 3,
        url: Text::parse("http://127.0.0.1:9999/job/team/job/nightly/3/").expect("text"),
    });
    given(&running(0))
        .when(EXEC, elsewhere)
        .then_reject(RejectionCode::JenkinsOriginMismatch);
    // The same origin written differently is the same server.
    let (events, _) = given(&running(0))
        .when(EXEC, queued_item("HTTP://127.0.0.1:8080/queue/item/7/"))
        .events();
    assert_eq!(events.len(), 1);
}
