//! The executor's reports about a run's Jenkins build: `report_jenkins_queued` and
//! `report_jenkins_build`. Both are accepted only from the executor running the run. Once a
//! queue item or build is recorded, the same report again changes nothing and a different one is
//! refused (`jenkins_build_recorded`): a run never follows two builds. A queue item or build URL
//! on another origin than the test case's Jenkins URL is refused (`jenkins_origin_mismatch`):
//! the executor would send the server's API token wherever the recorded URL points.

use super::reject;
use super::reports::same_executor;
use crate::state::{Lab, RunPhase, RunState};
use runledger_types::command::{ReportJenkinsBuild, ReportJenkinsQueued};
use runledger_types::event::{JenkinsBuildQueued, JenkinsBuildStarted};
use runledger_types::{Event, Rejection, RejectionCode, RunId, Text};

/// `jenkins_build_queued`, unless a queue item is already recorded for the run.
pub(super) fn queued(
    lab: &Lab,
    executor: &str,
    command: &ReportJenkinsQueued,
) -> Result<Vec<Event>, Rejection> {
    let found = running_jenkins_run(lab, executor, command.run_id, &command.queue_item)?;
    match found.jenkins.as_ref().and_then(|j| j.queue_item.as_ref()) {
        Some(item) if *item == command.queue_item => Ok(Vec::new()),
        Some(item) => reject(
            RejectionCode::JenkinsBuildRecorded,
            format!(
                "run {} already follows Jenkins queue item {item}",
                command.run_id
            ),
        ),
        None => Ok(vec![Event::JenkinsBuildQueued(JenkinsBuildQueued {
            run_id: command.run_id,
            queue_item: command.queue_item.clone(),
        })]),
    }
}

/// `jenkins_build_started`, unless a build is already recorded for the run.
pub(super) fn build_started(
    lab: &Lab,
    executor: &str,
    command: &ReportJenkinsBuild,
) -> Result<Vec<Event>, Rejection> {
    let found = running_jenkins_run(lab, executor, command.run_id, &command.url)?;
    match found.jenkins.as_ref().and_then(|j| j.build.as_ref()) {
        Some((number, url)) if *number == command.number && *url == command.url => Ok(Vec::new()),
        Some((number, url)) => reject(
            RejectionCode::JenkinsBuildRecorded,
            format!(
                "run {} already follows Jenkins build #{number} ({url})",
                command.run_id
            ),
        ),
        None => Ok(vec![Event::JenkinsBuildStarted(JenkinsBuildStarted {
            run_id: command.run_id,
            number: command.number,
            url: command.url.clone(),
        })]),
    }
}

/// The run, if it is running under `executor`, its test case names a Jenkins job and `url` is on
/// that job's server.
fn running_jenkins_run<'a>(
    lab: &'a Lab,
    executor: &str,
    run_id: RunId,
    url: &Text,
) -> Result<&'a RunState, Rejection> {
    let found = super::run(lab, run_id)?;
    match found.phase {
        RunPhase::Running => same_executor(run_id, found, executor)?,
        RunPhase::Finished(_) => {
            return reject(
                RejectionCode::RunFinished,
                format!("run {run_id} has already finished"),
            );
        }
        _ => {
            return reject(
                RejectionCode::RunNotRunning,
                format!("run {run_id} is not running"),
            );
        }
    }
    let server = lab
        .test_case(&found.test_case_id)
        .and_then(|test_case| test_case.jenkins.as_ref())
        .map(|job| &job.url);
    match server {
        None => reject(
            RejectionCode::NotAJenkinsRun,
            format!("run {run_id} does not run a Jenkins job"),
        ),
        Some(server) if !server.same_origin(url.as_str()) => reject(
            RejectionCode::JenkinsOriginMismatch,
            format!(
                "{url} is not on the origin of run {run_id}'s Jenkins server {}",
                server.as_str()
            ),
        ),
        Some(_) => Ok(found),
    }
}
