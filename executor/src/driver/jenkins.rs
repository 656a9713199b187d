//! [`drive_jenkins`]: one run of a Jenkins job, from the trigger to `report_run_finished`.
//!
//! Each step records what it learned before going on: the queue item (`report_jenkins_queued`)
//! as soon as the trigger is answered, the build (`report_jenkins_build`) as soon as it has a
//! number. A later attempt (after this executor was lost, say) starts from what was recorded,
//! so it follows the same build instead of starting another. The one window left, between the
//! trigger's answer and its record, is closed by [`RUN_ID_PARAMETER`]: before triggering again,
//! the job's recent builds and the queue are searched for the run's id.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use runledger_types::RunStatus;
use runledger_types::command::{ReportJenkinsBuild, ReportJenkinsQueued, ReportRunFinished};
use runledger_types::ids::RunId;
use runledger_types::jenkins::{JenkinsJobName, RUN_ID_PARAMETER};
use runledger_types::values::Text;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{NotReported, Reporter, output};
use crate::jenkins::{
    BuildState, ConsoleCursor, Found, JenkinsClient, JenkinsError, JenkinsErrorKind, QueueState,
    TestReport,
};
use crate::ssh::Output;

/// How often a trigger that met no answer is tried again (after a search for it).
const TRIGGER_ATTEMPTS: u32 = 4;
/// How long Jenkins may stay unreachable while a build is followed before the run ends `error`.
const UNREACHABLE_FOR: Duration = Duration::from_secs(60);
/// After `stop`: how long until `term`, then `kill`, then giving up waiting for the build's end.
const STOP_STEPS: [(Duration, &str); 3] = [
    (Duration::from_secs(10), "term"),
    (Duration::from_secs(20), "kill"),
    (Duration::from_secs(30), ""),
];
/// How long a build whose console ended may take to show its result.
const RESULT_WAIT: Duration = Duration::from_secs(30);

/// Everything needed to drive one run of a Jenkins job.
#[derive(Debug, Clone)]
pub struct JenkinsRunJob {
    /// The run.
    pub run_id: RunId,
    /// The job.
    pub job: JenkinsJobName,
    /// Build parameters (the test case's, overridden by the run's env).
    pub parameters: BTreeMap<String, String>,
    /// Past this the build is stopped and the run ends `timed_out`.
    pub timeout: Duration,
    /// The queue item an earlier attempt recorded.
    pub queue_item: Option<String>,
    /// The build an earlier attempt recorded.
    pub build: Option<(u64, String)>,
    /// The output `seq` this attempt numbers its chunks after.
    pub after_seq: u64,
    /// Most bytes of console output recorded; the rest is dropped with a note.
    pub max_output_bytes: u64,
    /// How often Jenkins is asked for news.
    pub poll: Duration,
}

/// How a run of a Jenkins job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct JenkinsEnd {
    /// The run's final status.
    pub status: RunStatus,
    /// Why, in words.
    pub reason: Option<String>,
    /// For `error`: the machine-readable reason.
    pub error_code: Option<&'static str>,
    /// The build's test report, if it has one.
    pub report: Option<TestReport>,
}

impl JenkinsEnd {
    fn new(status: RunStatus, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: Some(reason.into()),
            error_code: None,
            report: None,
        }
    }

    fn failed_call(error: &JenkinsError) -> Self {
        let status = match error.kind {
            // The test case names a job the server lacks: trying again cannot help.
            JenkinsErrorKind::NoSuchJob => RunStatus::Failed,
            _ => RunStatus::Error,
        };
        Self {
            status,
            reason: Some(error.to_string()),
            error_code: (status == RunStatus::Error).then(|| error.kind.error_code()),
            report: None,
        }
    }
}

/// Drives `job` on `client`: streams the console as `report_run_output`, then reports
/// `report_run_finished`. The caller has claimed the run (`report_run_started`).
#[tracing::instrument(skip_all, fields(run_id = %job.run_id, job = %job.job))]
pub async fn drive_jenkins<R: Reporter>(
    client: &JenkinsClient,
    job: &JenkinsRunJob,
    reporter: &R,
    cancel: CancellationToken,
) -> Result<JenkinsEnd, NotReported<JenkinsEnd>> {
    let (sink, source) = mpsc::channel(64);
    let (marker, _) = watch::channel(None);
    let follow = async {
        let follower = Follower {
            client,
            job,
            reporter,
            cancel: &cancel,
            sink,
            deadline: Instant::now() + job.timeout,
        };
        follower.run().await
    };
    let (mut end, pumped) = tokio::join!(
        follow,
        output::pump(
            job.run_id,
            (job.after_seq, job.max_output_bytes),
            source,
            reporter,
            marker
        )
    );
    if pumped.unrecorded > 0 {
        tracing::warn!(pumped.unrecorded, "some output chunks were not recorded");
    }
    // As for a command run (classify.rs, row 3): lost output outranks the build's own verdict,
    // not a cancel, a timeout or another infrastructure error.
    let verdict_only = matches!(end.status, RunStatus::Passed | RunStatus::Failed);
    if let Some(lost) = pumped.lost.filter(|_| verdict_only) {
        let infra = lost.infra_error();
        end = JenkinsEnd {
            status: RunStatus::Error,
            reason: Some(infra.detail),
            error_code: Some(infra.code.as_str()),
            report: end.report,
        };
    }
    tracing::info!(status = end.status.as_str(), reason = ?end.reason, "run ended");
    let tests = end
        .report
        .as_ref()
        .map(|r| r.tests.clone())
        .unwrap_or_default();
    let reported = match super::test_parts::send_in_parts(reporter, job.run_id, tests).await {
        Ok(tests) => {
            let report = ReportRunFinished {
                run_id: job.run_id,
                status: end.status,
                exit_code: None,
                summary: end.report.as_ref().map(|r| r.summary),
                reason: end.reason.clone(),
                error_code: end.error_code.map(str::to_owned),
                tests,
            };
            reporter.send_report(&report).await
        }
        Err(error) => Err(error),
    };
    match reported {
        Ok(()) => Ok(end),
        Err(source) => Err(NotReported {
            outcome: end,
            source,
        }),
    }
}

/// Why the build is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    TimedOut,
}

impl Stop {
    fn status(self) -> RunStatus {
        match self {
            Self::Cancelled => RunStatus::Cancelled,
            Self::TimedOut => RunStatus::TimedOut,
        }
    }

    fn reason(self, timeout: Duration) -> String {
        match self {
            Self::Cancelled => "cancelled: the Jenkins build was stopped".to_owned(),
            Self::TimedOut => format!(
                "timed out after {} s: the Jenkins build was stopped",
                timeout.as_secs()
            ),
        }
    }
}

struct Follower<'a, R> {
    client: &'a JenkinsClient,
    job: &'a JenkinsRunJob,
    reporter: &'a R,
    cancel: &'a CancellationToken,
    sink: mpsc::Sender<Output>,
    deadline: Instant,
}

impl<R: Reporter> Follower<'_, R> {
    async fn run(self) -> JenkinsEnd {
        let (number, url) = match self.job.build.clone() {
            Some(build) => {
                self.note(&format!(
                    "following Jenkins build #{} again: {}",
                    build.0, build.1
                ))
                .await;
                build
            }
            None => match self.until_started().await {
                Ok(build) => build,
                Err(end) => return end,
            },
        };
        tracing::info!(number, %url, "following the build");
        self.follow_build(&url).await
    }

    /// Why to stop now, if at all.
    fn stop_now(&self) -> Option<Stop> {
        if self.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(Stop::TimedOut)
        } else {
            None
        }
    }

    /// A line of runledger's own on the run's stderr.
    async fn note(&self, line: &str) {
        let text = Bytes::from(format!("[runledger] {line}\n"));
        let _ = self.sink.send(Output::Stderr(text)).await;
    }

    async fn pause(&self) {
        tokio::select! {
            () = self.cancel.cancelled() => {}
            () = tokio::time::sleep_until(self.deadline) => {}
            () = tokio::time::sleep(self.job.poll) => {}
        }
    }

    /// Finds or triggers the run's build and waits for it to start; records both steps.
    async fn until_started(&self) -> Result<(u64, String), JenkinsEnd> {
        let item = match self.job.queue_item.clone() {
            Some(item) => item,
            None => match self.find_or_trigger().await? {
                Found::Build { number, url } => {
                    self.record_build(number, &url).await;
                    return Ok((number, url));
                }
                Found::Queued(item) => item,
            },
        };
        let mut unreachable_since: Option<Instant> = None;
        let mut last_why = None;
        loop {
            if let Some(stop) = self.stop_now() {
                if let Err(err) = self.client.cancel_queued(&item).await {
                    tracing::warn!(error = %err, "cancelling the queue item failed");
                }
                self.note("the queue item was cancelled").await;
                return Err(JenkinsEnd::new(
                    stop.status(),
                    stop.reason(self.job.timeout),
                ));
            }
            match self.client.queue_item(&item).await {
                Ok(Some(QueueState::Started { number, url })) => {
                    self.record_build(number, &url).await;
                    return Ok((number, url));
                }
                Ok(Some(QueueState::Waiting { why })) => {
                    unreachable_since = None;
                    if why.is_some() && why != last_why {
                        self.note(&format!(
                            "waiting in Jenkins' queue: {}",
                            why.as_deref().unwrap_or_default()
                        ))
                        .await;
                        last_why = why;
                    }
                }
                Ok(Some(QueueState::Cancelled)) => {
                    return Err(JenkinsEnd::new(
                        RunStatus::Failed,
                        "the build was cancelled in Jenkins' queue",
                    ));
                }
                Ok(None) => return self.forgotten(&item).await,
                Err(err) => self.tolerate(err, &mut unreachable_since)?,
            }
            self.pause().await;
        }
    }

    /// Jenkins forgot the queue item (it does, minutes after a build starts): the build is
    /// looked for by the run's id.
    async fn forgotten(&self, item: &str) -> Result<(u64, String), JenkinsEnd> {
        match self
            .client
            .find_triggered(&self.job.job, &self.run_id())
            .await
        {
            Ok(Some(Found::Build { number, url })) => {
                self.record_build(number, &url).await;
                Ok((number, url))
            }
            Ok(_) => Err(JenkinsEnd {
                error_code: Some("jenkins_build_lost"),
                ..JenkinsEnd::new(
                    RunStatus::Error,
                    format!(
                        "Jenkins no longer knows queue item {item} and no build of this run was found"
                    ),
                )
            }),
            Err(err) => Err(JenkinsEnd::failed_call(&err)),
        }
    }

    /// A call that failed: tolerated while Jenkins has been unreachable for less than
    /// [`UNREACHABLE_FOR`]; any other failure ends the run.
    fn tolerate(&self, err: JenkinsError, since: &mut Option<Instant>) -> Result<(), JenkinsEnd> {
        if err.kind != JenkinsErrorKind::Unreachable {
            return Err(JenkinsEnd::failed_call(&err));
        }
        let first = *since.get_or_insert_with(Instant::now);
        if first.elapsed() >= UNREACHABLE_FOR {
            return Err(JenkinsEnd::failed_call(&err));
        }
        tracing::warn!(error = %err, "Jenkins did not answer; asking again");
        Ok(())
    }

    fn run_id(&self) -> String {
        self.job.run_id.to_string()
    }

    /// A build an earlier attempt may have triggered without recording it, else a new trigger
    /// (tried again after a search when it met no answer: it may have arrived).
    async fn find_or_trigger(&self) -> Result<Found, JenkinsEnd> {
        let run_id = self.run_id();
        if self.job.after_seq > 0 {
            match self.client.find_triggered(&self.job.job, &run_id).await {
                Ok(Some(found)) => return Ok(self.adopted(found).await),
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "searching for an earlier build failed"),
            }
        }
        let mut attempt = 1;
        loop {
            match self
                .client
                .trigger(&self.job.job, &self.job.parameters, &run_id)
                .await
            {
                Ok(item) => {
                    self.note(&format!("triggered {}: queue item {item}", self.job.job))
                        .await;
                    self.record_queued(&item).await;
                    return Ok(Found::Queued(item));
                }
                Err(err)
                    if err.kind == JenkinsErrorKind::Unreachable && attempt < TRIGGER_ATTEMPTS =>
                {
                    tracing::warn!(error = %err, attempt, "trigger not answered; looking for it before trying again");
                    tokio::time::sleep(self.job.poll * attempt).await;
                    match self.client.find_triggered(&self.job.job, &run_id).await {
                        Ok(Some(found)) => return Ok(self.adopted(found).await),
                        Ok(None) => {}
                        Err(err) => tracing::warn!(error = %err, "searching for the build failed"),
                    }
                    attempt += 1;
                }
                Err(err) => return Err(JenkinsEnd::failed_call(&err)),
            }
        }
    }

    /// Records a queue item or build found by the run's id.
    async fn adopted(&self, found: Found) -> Found {
        match &found {
            Found::Queued(item) => {
                self.note(&format!("found this run's queue item {item}"))
                    .await;
                self.record_queued(item).await;
            }
            Found::Build { number, url } => {
                self.note(&format!("found this run's build #{number}: {url}"))
                    .await;
            }
        }
        found
    }

    async fn record_queued(&self, item: &str) {
        let report = Text::parse(item).map(|queue_item| ReportJenkinsQueued {
            run_id: self.job.run_id,
            queue_item,
        });
        let sent = match report {
            Ok(report) => self
                .reporter
                .send_report(&report)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(format!("queue item {item:?}: {err}")),
        };
        if let Err(err) = sent {
            tracing::warn!(error = %err, "the queue item was not recorded");
        }
    }

    async fn record_build(&self, number: u64, url: &str) {
        self.note(&format!("Jenkins build #{number} started: {url}"))
            .await;
        let report = Text::parse(url).map(|url| ReportJenkinsBuild {
            run_id: self.job.run_id,
            number,
            url,
        });
        let sent = match report {
            Ok(report) => self
                .reporter
                .send_report(&report)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(format!("build url {url:?}: {err}")),
        };
        if let Err(err) = sent {
            tracing::warn!(error = %err, "the build was not recorded");
        }
    }

    /// Streams the build's console until it ends (stopping it on cancel or timeout), then reads
    /// its result and test report.
    async fn follow_build(&self, url: &str) -> JenkinsEnd {
        let mut cursor = ConsoleCursor::default();
        let mut unreachable_since = None;
        let mut stopping: Option<(Stop, Instant, usize)> = None;
        loop {
            if stopping.is_none()
                && let Some(stop) = self.stop_now()
            {
                self.note("stopping the Jenkins build").await;
                if let Err(err) = self.client.stop(url, "stop").await {
                    tracing::warn!(error = %err, "stopping the build failed");
                }
                stopping = Some((stop, Instant::now(), 0));
            }
            if let Some((stop, since, step)) = &mut stopping
                && let Some((after, how)) = STOP_STEPS.get(*step)
                && since.elapsed() >= *after
            {
                *step += 1;
                if how.is_empty() {
                    return JenkinsEnd::new(stop.status(), stop.reason(self.job.timeout));
                }
                if let Err(err) = self.client.stop(url, how).await {
                    tracing::warn!(error = %err, how, "stopping the build failed");
                }
            }
            match self.read_console(url, &mut cursor, stopping.as_ref()).await {
                // Interrupted: stop the build, or take its next stop step.
                None => continue,
                Some(Ok(more)) => {
                    unreachable_since = None;
                    if !more {
                        break;
                    }
                }
                Some(Err(err)) => {
                    if let Err(end) = self.tolerate(err, &mut unreachable_since) {
                        return end;
                    }
                }
            }
            if stopping.is_some() {
                tokio::time::sleep(self.job.poll).await;
            } else {
                self.pause().await;
            }
        }
        let result = match self.result(url).await {
            Ok(result) => result,
            Err(end) => return end,
        };
        let report = match self.client.test_report(url).await {
            Ok(report) => report,
            Err(err) => {
                tracing::warn!(error = %err, "the build's test report could not be read");
                None
            }
        };
        let stop = stopping.map(|(stop, _, _)| stop);
        JenkinsEnd {
            report,
            ..self.verdict(&result, stop)
        }
    }

    /// One console read, streamed to the sink; `None` when it was interrupted (however long the
    /// answer, it does not hold up cancel, the timeout or the next stop step). The cursor keeps
    /// what was handed on, so an interrupted read goes on where it stopped.
    async fn read_console(
        &self,
        url: &str,
        cursor: &mut ConsoleCursor,
        stopping: Option<&(Stop, Instant, usize)>,
    ) -> Option<Result<bool, JenkinsError>> {
        let sink = &self.sink;
        let read = self.client.read_console(url, cursor, |piece| async move {
            let _ = sink.send(Output::Stdout(piece)).await;
        });
        let interrupt = async {
            match stopping {
                None => tokio::select! {
                    () = self.cancel.cancelled() => {}
                    () = tokio::time::sleep_until(self.deadline) => {}
                },
                Some((_, since, step)) => match STOP_STEPS.get(*step) {
                    Some((after, _)) => tokio::time::sleep_until(*since + *after).await,
                    None => std::future::pending().await,
                },
            }
        };
        tokio::select! {
            read = read => Some(read),
            () = interrupt => None,
        }
    }

    /// The build's result, once Jenkins shows one.
    async fn result(&self, url: &str) -> Result<String, JenkinsEnd> {
        let waited = Instant::now();
        let mut unreachable_since = None;
        loop {
            match self.client.build(url).await {
                Ok(BuildState::Done(result)) => return Ok(result),
                Ok(BuildState::Building) if waited.elapsed() < RESULT_WAIT => {}
                Ok(BuildState::Building) => {
                    return Err(JenkinsEnd {
                        error_code: Some("jenkins_refused"),
                        ..JenkinsEnd::new(
                            RunStatus::Error,
                            "the build's console ended but Jenkins shows no result",
                        )
                    });
                }
                Err(err) => self.tolerate(err, &mut unreachable_since)?,
            }
            tokio::time::sleep(self.job.poll).await;
        }
    }

    /// The run's status for the build's `result`.
    fn verdict(&self, result: &str, stop: Option<Stop>) -> JenkinsEnd {
        match (result, stop) {
            ("SUCCESS", _) => JenkinsEnd {
                status: RunStatus::Passed,
                reason: None,
                error_code: None,
                report: None,
            },
            ("ABORTED", Some(stop)) => {
                JenkinsEnd::new(stop.status(), stop.reason(self.job.timeout))
            }
            ("UNSTABLE", _) => JenkinsEnd::new(
                RunStatus::Failed,
                "the Jenkins build is UNSTABLE (test failures)",
            ),
            ("ABORTED", None) => JenkinsEnd::new(
                RunStatus::Failed,
                "the Jenkins build was aborted in Jenkins",
            ),
            (other, _) => JenkinsEnd::new(
                RunStatus::Failed,
                format!("the Jenkins build ended {other}"),
            ),
        }
    }
}

/// Build parameters: the test case's, with the run's env laid over them.
pub fn build_parameters(
    test_case: &BTreeMap<runledger_types::jenkins::JenkinsParameterName, String>,
    run_env: &BTreeMap<runledger_types::EnvName, String>,
) -> BTreeMap<String, String> {
    let mut parameters: BTreeMap<String, String> = test_case
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
        .collect();
    for (name, value) in run_env {
        if name.as_str() != RUN_ID_PARAMETER {
            parameters.insert(name.as_str().to_owned(), value.clone());
        }
    }
    parameters
}
