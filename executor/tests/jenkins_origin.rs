//! Jenkins credentials stay on the server's own origin, and its console is read in bounded
//! pieces. Against the fake Jenkins: a queue item `Location`, a build URL or a recorded build on
//! another loopback origin (an `HttpSpy` on another port) is never requested, so no
//! `Authorization` header reaches it, and the run ends `error` (`jenkins_origin_mismatch`); a
//! 20 MB console arrives whole, in order, in pieces of at most `CONSOLE_PIECE` bytes, also when
//! a read breaks off mid-body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use runledger_executor::driver::{JenkinsRunJob, ReportError, Reporter, drive_jenkins};
use runledger_executor::jenkins::{CONSOLE_PIECE, ConsoleCursor, JenkinsClient, JenkinsErrorKind};
use runledger_test_support::{FakeJenkins, FakeJob, HttpSpy, JENKINS_TOKEN, JENKINS_USER};
use runledger_types::jenkins::JenkinsJobName;
use runledger_types::{RunId, RunStatus};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const JOB: &str = "team/nightly";

fn job(lines: Vec<String>) -> FakeJob {
    FakeJob {
        name: JOB.to_owned(),
        lines,
        result: "SUCCESS".to_owned(),
        queue_delay: Duration::ZERO,
        line_delay: Duration::ZERO,
        test_report: None,
    }
}

fn client(jenkins: &FakeJenkins) -> JenkinsClient {
    JenkinsClient::new(
        jenkins.url.clone(),
        Some((JENKINS_USER.into(), JENKINS_TOKEN.into())),
    )
    .unwrap()
}

fn driver_job() -> JenkinsRunJob {
    JenkinsRunJob {
        run_id: RunId(Uuid::now_v7()),
        job: JenkinsJobName::parse(JOB).unwrap(),
        parameters: BTreeMap::new(),
        timeout: Duration::from_secs(60),
        queue_item: None,
        build: None,
        after_seq: 0,
        poll: Duration::from_millis(50),
    }
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
    fn reported(&self, command_type: &str) -> Vec<Value> {
        let reports = self.0.lock().unwrap();
        reports
            .iter()
            .filter(|(t, _)| *t == command_type)
            .map(|(_, payload)| payload.clone())
            .collect()
    }

    fn stdout(&self) -> String {
        self.reported("report_run_output")
            .iter()
            .filter(|chunk| chunk["stream"] == "stdout")
            .map(|chunk| chunk["text"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Drives `job`; asserts that `spy` got no request (so no credential) and that the run ended
/// `error` with `jenkins_origin_mismatch`.
async fn ends_with_origin_mismatch(
    jenkins: &FakeJenkins,
    job: &JenkinsRunJob,
    spy: &HttpSpy,
) -> Recorder {
    let recorder = Recorder::default();
    let end = drive_jenkins(&client(jenkins), job, &recorder, CancellationToken::new())
        .await
        .unwrap();
    assert!(!spy.saw_credentials(), "{:?}", spy.requests());
    assert_eq!(spy.requests(), vec![], "the other origin was requested");
    assert_eq!(end.status, RunStatus::Error, "{end:?}");
    assert_eq!(end.error_code, Some("jenkins_origin_mismatch"), "{end:?}");
    assert!(end.reason.unwrap().contains("is not on the origin"));
    recorder
}

#[tokio::test]
async fn a_queue_item_on_another_origin_is_not_followed() {
    let jenkins = FakeJenkins::start(job(vec!["step".into()])).await;
    let spy = HttpSpy::start().await;
    jenkins.answer_queue_items_at(&spy.url);
    let recorder = ends_with_origin_mismatch(&jenkins, &driver_job(), &spy).await;
    assert!(recorder.reported("report_jenkins_queued").is_empty());
}

#[tokio::test]
async fn a_build_on_another_origin_is_not_followed() {
    let jenkins = FakeJenkins::start(job(vec!["step".into()])).await;
    let spy = HttpSpy::start().await;
    jenkins.answer_builds_at(&spy.url);
    let recorder = ends_with_origin_mismatch(&jenkins, &driver_job(), &spy).await;
    assert_eq!(recorder.reported("report_jenkins_queued").len(), 1);
    assert!(recorder.reported("report_jenkins_build").is_empty());
}

#[tokio::test]
async fn a_recorded_build_on_another_origin_is_not_followed() {
    let jenkins = FakeJenkins::start(job(vec!["step".into()])).await;
    let spy = HttpSpy::start().await;
    let mut recorded = driver_job();
    recorded.build = Some((1, format!("{}job/team/job/nightly/1/", spy.url)));
    ends_with_origin_mismatch(&jenkins, &recorded, &spy).await;
}

#[tokio::test]
async fn no_call_sends_the_token_to_another_origin() {
    let jenkins = FakeJenkins::start(job(vec!["step".into()])).await;
    let spy = HttpSpy::start().await;
    let client = client(&jenkins);
    let build = format!("{}job/team/job/nightly/1/", spy.url);
    // The same host on another port, and another scheme, are other origins.
    let item = format!("{}queue/item/1/", spy.url);
    let https = jenkins.url.replace("http://", "https://");
    let kinds = [
        client.queue_item(&item).await.err().map(|e| e.kind),
        client.build(&build).await.err().map(|e| e.kind),
        client.test_report(&build).await.err().map(|e| e.kind),
        client.stop(&build, "stop").await.err().map(|e| e.kind),
        client.build(&https).await.err().map(|e| e.kind),
        client
            .read_console(&build, &mut ConsoleCursor::default(), |_| async {})
            .await
            .err()
            .map(|e| e.kind),
    ];
    assert!(!spy.saw_credentials(), "{:?}", spy.requests());
    assert_eq!(spy.requests(), vec![]);
    assert!(
        kinds
            .iter()
            .all(|kind| *kind == Some(JenkinsErrorKind::ForeignOrigin)),
        "{kinds:?}"
    );
    // The server's own URLs, absolute or not, are still used (with the token).
    let (_, own) = jenkins.start_build(&[]);
    assert!(client.build(&own).await.is_ok());
}

/// 200 lines of 100,000 bytes each: a console of about 20 MB.
fn large_console() -> (Vec<String>, String) {
    let lines: Vec<String> = (0..200)
        .map(|i| format!("{i:06} {}", "x".repeat(100_000 - 7)))
        .collect();
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str("Finished: SUCCESS\n");
    (lines, text)
}

/// Reads the console once from `cursor`, returning the pieces handed on.
async fn read_pieces(
    client: &JenkinsClient,
    url: &str,
    cursor: &mut ConsoleCursor,
) -> (Result<bool, JenkinsErrorKind>, Vec<usize>, Vec<u8>) {
    let pieces = Mutex::new((Vec::new(), Vec::new()));
    let result = client
        .read_console(url, cursor, |piece| {
            let mut pieces = pieces.lock().unwrap();
            pieces.0.push(piece.len());
            pieces.1.extend_from_slice(&piece);
            async {}
        })
        .await
        .map_err(|e| e.kind);
    let (sizes, bytes) = pieces.into_inner().unwrap();
    (result, sizes, bytes)
}

#[tokio::test]
async fn a_large_console_is_read_in_bounded_pieces() {
    let (lines, text) = large_console();
    let jenkins = FakeJenkins::start(job(lines)).await;
    let (_, url) = jenkins.start_build(&[]);
    let client = client(&jenkins);
    let mut cursor = ConsoleCursor::default();
    let (more, sizes, bytes) = read_pieces(&client, &url, &mut cursor).await;
    assert_eq!(more, Ok(false));
    assert!(sizes.iter().all(|&size| size <= CONSOLE_PIECE), "{sizes:?}");
    assert!(sizes.len() >= text.len() / CONSOLE_PIECE, "{sizes:?}");
    assert!(bytes == text.as_bytes(), "the console arrived altered");
    assert_eq!(cursor.offset, text.len() as u64);
}

#[tokio::test]
async fn a_console_read_broken_off_goes_on_without_gap_or_repeat() {
    let (lines, text) = large_console();
    let jenkins = FakeJenkins::start(job(lines)).await;
    let (_, url) = jenkins.start_build(&[]);
    let client = client(&jenkins);
    let mut cursor = ConsoleCursor::default();
    jenkins.cut_next_console_after(3_000_000);
    let (broken, _, mut bytes) = read_pieces(&client, &url, &mut cursor).await;
    assert_eq!(broken, Err(JenkinsErrorKind::Unreachable));
    assert_eq!(cursor.offset, 0);
    assert_eq!(cursor.handed_on, bytes.len() as u64);
    assert!(
        bytes.len() <= 3_000_000 && !bytes.is_empty(),
        "{}",
        bytes.len()
    );
    let (more, sizes, rest) = read_pieces(&client, &url, &mut cursor).await;
    assert_eq!(more, Ok(false));
    assert!(sizes.iter().all(|&size| size <= CONSOLE_PIECE));
    bytes.extend_from_slice(&rest);
    assert!(bytes == text.as_bytes(), "gap or repeat after the break");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_a_build_with_a_large_console_reports_all_of_it() {
    let (lines, text) = large_console();
    let jenkins = FakeJenkins::start(job(lines)).await;
    let recorder = Recorder::default();
    let end = drive_jenkins(
        &client(&jenkins),
        &driver_job(),
        &recorder,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(end.status, RunStatus::Passed, "{end:?}");
    let stdout = recorder.stdout();
    assert_eq!(stdout.len(), text.len());
    assert!(stdout == text, "the run's output differs from the console");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_console_answer_does_not_hold_up_cancel() {
    let mut running = job((0..600).map(|i| format!("step {i}")).collect());
    running.line_delay = Duration::from_millis(100);
    let jenkins = FakeJenkins::start(running).await;
    jenkins.stall_next_console_after(1_000);
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cancel.cancel();
        })
    };
    let started = std::time::Instant::now();
    let recorder = Recorder::default();
    let end = drive_jenkins(&client(&jenkins), &driver_job(), &recorder, cancel)
        .await
        .unwrap();
    canceller.await.unwrap();
    // Well under the 30 s a silent answer may last.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(!jenkins.stops().is_empty(), "the build was not stopped");
    assert_eq!(end.status, RunStatus::Cancelled, "{end:?}");
}
