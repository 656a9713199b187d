//! Runs of Jenkins jobs against a fake Jenkins (test-support's `FakeJenkins`, answering as
//! Jenkins documents): end to end through the handler and an executor (trigger with crumb and
//! token, queue item, build, console, result, test report, events; bad credentials; a lost
//! trigger answer; cancel and timeout stop the build), and the driver alone for the later
//! attempt that must follow the recorded build instead of starting another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use runledger_executor::driver::{JenkinsRunJob, ReportError, Reporter, drive_jenkins};
use runledger_executor::jenkins::JenkinsClient;
use runledger_executor::{ExecutorSettings, run};
use runledger_test_support::{
    CommandClient, FakeJenkins, FakeJob, JENKINS_TOKEN, JENKINS_USER, TestLab, eventually,
};
use runledger_types::jenkins::{JenkinsJobName, RUN_ID_PARAMETER};
use runledger_types::{CommandId, EventRecord, Outcome, RunId, RunStatus};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ADMIN: &str = "admin";
const WAIT: Duration = Duration::from_secs(30);
const JOB: &str = "team/nightly";

fn job(lines: usize, result: &str, line_delay_ms: u64) -> FakeJob {
    let mut console = vec!["Started by remote host 127.0.0.1".to_owned()];
    console.extend((1..=lines).map(|i| format!("step {i}")));
    FakeJob {
        name: JOB.to_owned(),
        lines: console,
        result: result.to_owned(),
        queue_delay: Duration::from_millis(300),
        line_delay: Duration::from_millis(line_delay_ms),
        test_report: Some(json!({"_class": "hudson.tasks.junit.TestResult",
            "passCount": 1, "failCount": 1, "skipCount": 0,
            "suites": [{"cases": [
                {"className": "tests.test_api", "name": "test_ok", "status": "PASSED", "duration": 0.5},
                {"className": "tests.test_api", "name": "test_bad", "status": "FAILED", "duration": 1.25,
                 "errorDetails": "assert 1 == 2"}]}]})),
    }
}

fn accepted(outcome: Outcome) -> Outcome {
    assert!(outcome.accepted, "expected acceptance, got {outcome:?}");
    outcome
}

async fn events(lab: &TestLab) -> Vec<EventRecord> {
    lab.store
        .read_after(0, 100_000)
        .await
        .expect("read the log")
}

async fn finished(lab: &TestLab, run_id: Uuid) -> Value {
    eventually(WAIT, "run_finished", || async {
        events(lab).await.into_iter().find_map(|e| {
            (e.event_type == "run_finished" && e.data["run_id"] == json!(run_id)).then_some(e.data)
        })
    })
    .await
}

/// Defines a test case for the fake's job; `token` is the API token given (if any).
async fn define(
    client: &CommandClient,
    jenkins: &FakeJenkins,
    token: Option<&str>,
    timeout_s: u32,
) -> Uuid {
    let test_case_id = Uuid::now_v7();
    let mut job =
        json!({"url": jenkins.url, "job": JOB, "parameters": {"BRANCH": "main", "SUITE": "api"}});
    if let Some(token) = token {
        job["credentials"] = json!({"username": JENKINS_USER, "api_token": token});
    }
    let payload = json!({"test_case_id": test_case_id, "name": format!("jenkins-{test_case_id}"),
                         "jenkins": job, "timeout_s": timeout_s,
                         "env_overridable": ["BRANCH"]});
    accepted(client.send("define_test_case", ADMIN, payload).await);
    test_case_id
}

async fn start(client: &CommandClient, test_case_id: Uuid, env: Value) -> Uuid {
    let run_id = Uuid::now_v7();
    let payload = json!({"run_id": run_id, "test_case_id": test_case_id, "env": env});
    accepted(client.send("start_run", ADMIN, payload).await);
    run_id
}

/// `start_run` with a correlation id, as a CI server tying its own job to the run would send it.
async fn start_correlated(client: &CommandClient, test_case_id: Uuid, correlation: Uuid) -> Uuid {
    let (run_id, command_id) = (Uuid::now_v7(), CommandId::new());
    let payload = json!({"run_id": run_id, "test_case_id": test_case_id});
    let mut body = CommandClient::body(command_id, "start_run", ADMIN, payload);
    body["correlation_id"] = json!(correlation);
    let mut outcome = client.outcome_subscription(command_id).await;
    let body = serde_json::to_vec(&body).unwrap();
    client
        .publish_raw("start_run", Some(&command_id.to_string()), body)
        .await;
    accepted(CommandClient::next_outcome(&mut outcome).await);
    run_id
}

/// `(stream, text)` of the run's output, concatenated per stream.
fn output(log: &[EventRecord], run_id: Uuid) -> (String, String) {
    let mut stdout = String::new();
    let mut stderr = String::new();
    for e in log
        .iter()
        .filter(|e| e.event_type == "run_output" && e.data["run_id"] == json!(run_id))
    {
        let text = e.data["text"].as_str().unwrap();
        match e.data["stream"].as_str() {
            Some("stdout") => stdout.push_str(text),
            _ => stderr.push_str(text),
        }
    }
    (stdout, stderr)
}

fn of_run<'a>(log: &'a [EventRecord], run_id: Uuid, event_type: &str) -> Vec<&'a EventRecord> {
    log.iter()
        .filter(|e| e.event_type == event_type && e.data["run_id"] == json!(run_id))
        .collect()
}

struct Stack {
    lab: TestLab,
    handler: runledger_test_support::RunningHandler,
    shutdown: CancellationToken,
    executor: tokio::task::JoinHandle<Result<(), runledger_executor::ExecutorError>>,
}

/// An executor `name` that asks Jenkins every 100 ms and heartbeats every 200 ms.
fn executor_settings(lab: &TestLab, name: &str) -> ExecutorSettings {
    let mut settings = ExecutorSettings::new(name, lab.nats.names.clone(), lab.keyring.clone());
    settings.shutdown_grace = Duration::from_secs(5);
    settings.jenkins_poll = Duration::from_millis(100);
    settings.heartbeat_every = Duration::from_millis(200);
    settings
}

async fn stack() -> Stack {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let shutdown = CancellationToken::new();
    let settings = executor_settings(&lab, "jx");
    let executor = tokio::spawn(run(lab.nats.client.clone(), settings, shutdown.clone()));
    let user = json!({"username": ADMIN, "role": "admin", "password": "admin-password"});
    accepted(lab.client().send("register_user", "bootstrap", user).await);
    Stack {
        lab,
        handler,
        shutdown,
        executor,
    }
}

/// A run of `fake`'s job (test case with `retries`) whose executor dies once the build has
/// started, then the executor started again under the same name; returns the stack around the
/// second process, the fake and the run.
async fn crashed_mid_build(fake: FakeJob, retries: u32) -> (Stack, FakeJenkins, Uuid) {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    let user = json!({"username": ADMIN, "role": "admin", "password": "admin-password"});
    accepted(client.send("register_user", "bootstrap", user).await);
    let jenkins = FakeJenkins::start(fake).await;
    let settings = executor_settings(&lab, "phoenix");
    let first = tokio::spawn(run(
        lab.nats.client.clone(),
        settings,
        CancellationToken::new(),
    ));
    let test_case_id = Uuid::now_v7();
    let job = json!({"url": jenkins.url, "job": JOB,
                     "credentials": {"username": JENKINS_USER, "api_token": JENKINS_TOKEN}});
    let payload = json!({"test_case_id": test_case_id, "name": "crashed", "jenkins": job,
                         "timeout_s": 600, "retries": retries});
    accepted(client.send("define_test_case", ADMIN, payload).await);
    let run_id = start(&client, test_case_id, json!({})).await;
    eventually(WAIT, "the build started", || async {
        let log = events(&lab).await;
        (!of_run(&log, run_id, "jenkins_build_started").is_empty()).then_some(())
    })
    .await;
    // The process dies: nothing is reported; its runs' tasks are gone.
    first.abort();
    let _ = first.await;
    let shutdown = CancellationToken::new();
    let settings = executor_settings(&lab, "phoenix");
    let executor = tokio::spawn(run(lab.nats.client.clone(), settings, shutdown.clone()));
    let stack = Stack {
        lab,
        handler,
        shutdown,
        executor,
    };
    (stack, jenkins, run_id)
}

impl Stack {
    async fn stop(self) {
        self.shutdown.cancel();
        self.executor.await.unwrap().unwrap();
        self.handler.stop().await;
        self.lab.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_jenkins_job_runs_end_to_end() {
    let stack = stack().await;
    let (lab, client) = (&stack.lab, stack.lab.client());
    let jenkins = FakeJenkins::start(job(3, "UNSTABLE", 50)).await;

    let test_case = define(&client, &jenkins, Some(JENKINS_TOKEN), 60).await;
    let run_id = start(&client, test_case, json!({"BRANCH": "feature-x"})).await;
    let end = finished(lab, run_id).await;
    let log = events(lab).await;
    // Without a correlation id, the start_run's command id names the chain.
    let requested = of_run(&log, run_id, "run_requested");
    let chain = requested[0].correlation_id.expect("a correlation id");
    assert_eq!(chain, requested[0].command_id.0);
    for event in log
        .iter()
        .filter(|e| e.stream_id == format!("run-{run_id}"))
    {
        assert_eq!(
            event.correlation_id,
            Some(chain),
            "{} {}",
            event.event_type,
            event.actor
        );
    }
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(
        end["summary"],
        json!({"passed": 1, "failed": 1, "skipped": 0, "errors": 0})
    );
    assert_eq!(end["tests"][1]["message"], "assert 1 == 2", "{end}");
    assert_eq!(end["tests"][1]["duration_ms"], 1250, "{end}");

    let log = events(lab).await;
    let assigned = of_run(&log, run_id, "run_assigned");
    assert!(
        assigned[0].data.get("venv_id").is_none(),
        "{:?}",
        assigned[0].data
    );
    assert_eq!(of_run(&log, run_id, "jenkins_build_queued").len(), 1);
    let started = of_run(&log, run_id, "jenkins_build_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].data["number"], 1);
    assert_eq!(
        started[0].data["url"],
        json!(format!("{}job/team/job/nightly/1/", jenkins.url))
    );
    let (stdout, stderr) = output(&log, run_id);
    assert!(stdout.starts_with("Started by remote host"), "{stdout}");
    assert!(stdout.contains("step 3\nFinished: UNSTABLE\n"), "{stdout}");
    assert!(stderr.contains("Jenkins build #1 started"), "{stderr}");
    assert_eq!(jenkins.triggers(), 1);
    assert_eq!(jenkins.builds(), 1);
    let parameters: BTreeMap<String, String> = jenkins.build_parameters(1).into_iter().collect();
    assert_eq!(parameters["BRANCH"], "feature-x", "the run's env overrides");
    assert_eq!(parameters["SUITE"], "api");
    assert_eq!(parameters[RUN_ID_PARAMETER], run_id.to_string());
    // The API token is sealed in the log, never in clear.
    let text: String = log.iter().map(|e| e.data.to_string()).collect();
    assert!(!text.contains(JENKINS_TOKEN));

    // A caller's correlation id is carried from the command through the executor's reports.
    let correlation = Uuid::now_v7();
    let run_id = start_correlated(&client, test_case, correlation).await;
    finished(lab, run_id).await;
    let log = events(lab).await;
    let run_events: Vec<_> = log
        .iter()
        .filter(|e| e.stream_id == format!("run-{run_id}"))
        .collect();
    assert!(run_events.iter().any(|e| e.actor == "executor:jx"));
    for event in run_events {
        assert_eq!(
            event.correlation_id,
            Some(correlation),
            "{} {}",
            event.event_type,
            event.actor
        );
    }

    // A wrong token: Jenkins answers 401, the run ends `error` with the reason.
    let wrong = define(&client, &jenkins, Some("not-the-token"), 60).await;
    let run_id = start(&client, wrong, json!({})).await;
    let end = finished(lab, run_id).await;
    assert_eq!(end["status"], "error", "{end}");
    assert_eq!(end["error_code"], "jenkins_auth_failed", "{end}");
    assert!(end["reason"].as_str().unwrap().contains("401"), "{end}");
    // A machine selector cannot apply to a Jenkins job.
    let refused = client
        .send(
            "start_run",
            ADMIN,
            json!({"run_id": Uuid::now_v7(), "test_case_id": test_case, "labels": ["linux"]}),
        )
        .await;
    assert_eq!(
        refused.error.map(|e| e.code.as_str().to_owned()).as_deref(),
        Some("not_a_jenkins_run")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_trigger_answer_starts_only_one_build() {
    let stack = stack().await;
    let (lab, client) = (&stack.lab, stack.lab.client());
    let jenkins = FakeJenkins::start(job(2, "SUCCESS", 20)).await;
    jenkins.lose_trigger_answers(1);
    let test_case = define(&client, &jenkins, Some(JENKINS_TOKEN), 60).await;
    let run_id = start(&client, test_case, json!({})).await;
    let end = finished(lab, run_id).await;
    assert_eq!(end["status"], "passed", "{end}");
    assert_eq!(
        jenkins.builds(),
        1,
        "one build, although the trigger's answer was lost"
    );
    assert_eq!(
        jenkins.triggers(),
        1,
        "the queued item was found instead of triggering again"
    );
    let log = events(lab).await;
    assert_eq!(of_run(&log, run_id, "jenkins_build_queued").len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_and_timeout_stop_the_build() {
    let stack = stack().await;
    let (lab, client) = (&stack.lab, stack.lab.client());
    let jenkins = FakeJenkins::start(job(600, "SUCCESS", 100)).await;
    let test_case = define(&client, &jenkins, Some(JENKINS_TOKEN), 600).await;
    let run_id = start(&client, test_case, json!({})).await;
    eventually(WAIT, "the build's first lines", || async {
        let log = events(lab).await;
        output(&log, run_id).0.contains("step 2").then_some(())
    })
    .await;
    accepted(
        client
            .send("cancel_run", ADMIN, json!({"run_id": run_id}))
            .await,
    );
    let end = finished(lab, run_id).await;
    assert_eq!(end["status"], "cancelled", "{end}");
    assert_eq!(jenkins.stops(), vec![(1, "stop".to_owned())]);
    let (stdout, _) = output(&events(lab).await, run_id);
    assert!(stdout.ends_with("Finished: ABORTED\n"), "{stdout}");

    let short = define(&client, &jenkins, Some(JENKINS_TOKEN), 1).await;
    let run_id = start(&client, short, json!({})).await;
    let end = finished(lab, run_id).await;
    assert_eq!(end["status"], "timed_out", "{end}");
    assert!(
        jenkins.stops().contains(&(2, "stop".to_owned())) || jenkins.cancelled_items().len() == 1
    );
    stack.stop().await;
}

/// Records reports; accepts them all.
#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, Value)>>);

impl Reporter for Recorder {
    async fn report(&self, command_type: &'static str, payload: Value) -> Result<(), ReportError> {
        self.0.lock().unwrap().push((command_type, payload));
        Ok(())
    }
}

impl Recorder {
    fn types(&self) -> Vec<&'static str> {
        let mut types: Vec<_> = self.0.lock().unwrap().iter().map(|(t, _)| *t).collect();
        types.dedup();
        types
    }
}

fn driver_job(run_id: RunId, attempt: u32) -> JenkinsRunJob {
    JenkinsRunJob {
        run_id,
        job: JenkinsJobName::parse(JOB).unwrap(),
        parameters: BTreeMap::new(),
        timeout: Duration::from_secs(60),
        queue_item: None,
        build: None,
        after_seq: u64::from(attempt - 1) << 32,
        poll: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn a_later_attempt_follows_the_build_instead_of_triggering() {
    let jenkins = FakeJenkins::start(job(2, "SUCCESS", 10)).await;
    let client = JenkinsClient::new(
        jenkins.url.clone(),
        Some((JENKINS_USER.into(), JENKINS_TOKEN.into())),
    )
    .unwrap();

    // The build an earlier attempt recorded.
    let run_id = RunId(Uuid::now_v7());
    let (number, url) = jenkins.start_build(&[(RUN_ID_PARAMETER, &run_id.to_string())]);
    let mut job = driver_job(run_id, 2);
    job.build = Some((number, url));
    let recorder = Recorder::default();
    let end = drive_jenkins(&client, &job, &recorder, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(end.status, RunStatus::Passed);
    assert_eq!(jenkins.triggers(), 0);
    assert_eq!(
        recorder.types(),
        vec!["report_run_output", "report_run_finished"]
    );
    let first_seq = recorder.0.lock().unwrap()[0].1["seq"].as_u64().unwrap();
    assert_eq!(
        first_seq,
        (1 << 32) + 1,
        "attempt 2 numbers its output after attempt 1's"
    );

    // Triggered by an earlier attempt that was lost before recording it: found by the run id.
    let run_id = RunId(Uuid::now_v7());
    jenkins.start_build(&[(RUN_ID_PARAMETER, &run_id.to_string())]);
    let recorder = Recorder::default();
    let end = drive_jenkins(
        &client,
        &driver_job(run_id, 2),
        &recorder,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(end.status, RunStatus::Passed);
    assert_eq!(jenkins.triggers(), 0);
    assert!(
        recorder.types().contains(&"report_jenkins_build"),
        "{:?}",
        recorder.types()
    );

    // A first attempt triggers.
    let recorder = Recorder::default();
    let end = drive_jenkins(
        &client,
        &driver_job(RunId(Uuid::now_v7()), 1),
        &recorder,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(end.status, RunStatus::Passed);
    assert_eq!(jenkins.triggers(), 1);
    assert_eq!(jenkins.builds(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_executor_hands_its_jenkins_run_to_a_retry_that_follows_the_same_build() {
    let (stack, jenkins, run_id) = crashed_mid_build(job(40, "SUCCESS", 100), 1).await;
    let lab = &stack.lab;
    let end = finished(lab, run_id).await;
    let log = events(lab).await;
    let trail: Vec<String> = log
        .iter()
        .filter(|e| e.stream_id == format!("run-{run_id}") && e.event_type != "run_output")
        .map(|e| format!("{} {} {}", e.event_type, e.actor, e.data))
        .collect();
    assert_eq!(end["status"], "passed", "{end}\n{}", trail.join("\n"));
    let queued = of_run(&log, run_id, "run_queued");
    assert!(
        queued.iter().any(|e| e.data["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("executor lost")),
        "{queued:?}"
    );
    assert_eq!(of_run(&log, run_id, "run_assigned").len(), 2);
    assert_eq!(
        jenkins.triggers(),
        1,
        "the retry follows the build instead of triggering"
    );
    assert_eq!(jenkins.builds(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_build_of_a_run_that_ends_in_error_is_stopped() {
    // No retries: the crashed attempt ends the run.
    let (stack, jenkins, run_id) = crashed_mid_build(job(600, "SUCCESS", 100), 0).await;
    let end = finished(&stack.lab, run_id).await;
    assert_eq!(end["status"], "error", "{end}");
    assert_eq!(end["error_code"], "executor_lost", "{end}");
    eventually(WAIT, "the orphaned build stopped", || async {
        jenkins
            .stops()
            .contains(&(1, "stop".to_owned()))
            .then_some(())
    })
    .await;
    assert_eq!(jenkins.builds(), 1);
    stack.stop().await;
}
