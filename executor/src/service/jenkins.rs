//! A run of a Jenkins job: open the API token, build the client, drive the build.

use super::{NatsReporter, Worker};
use crate::driver::{JenkinsRunJob, build_parameters, drive_jenkins};
use crate::jenkins::JenkinsClient;
use crate::view::ResolvedJenkinsRun;
use runledger_types::SealedSecret;
use runledger_types::jenkins::JenkinsJob;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Drives `run` through its Jenkins server; a token that cannot be opened or a client that
/// cannot be built ends the run as `error`. `Err` says the end could not be reported.
pub(super) async fn drive(
    worker: &Worker,
    run: &ResolvedJenkinsRun,
    reporter: &NatsReporter,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let client = match client(worker, &run.job) {
        Ok(client) => client,
        Err((code, reason)) => {
            tracing::warn!(%reason, "cannot talk to the Jenkins server");
            return reporter
                .report_error_end(run.run_id, code, &reason)
                .await
                .map(drop)
                .map_err(|err| err.to_string());
        }
    };
    let job = JenkinsRunJob {
        run_id: run.run_id,
        job: run.job.job.clone(),
        parameters: build_parameters(&run.job.parameters, &run.run_env),
        timeout: Duration::from_secs(u64::from(run.timeout_s)),
        queue_item: run.queue_item.as_ref().map(|item| item.as_str().to_owned()),
        build: run
            .build
            .as_ref()
            .map(|(number, url)| (*number, url.as_str().to_owned())),
        after_seq: crate::chunker::first_seq_of_attempt(run.assignment.attempt),
        max_output_bytes: run.max_output_bytes,
        poll: worker.jenkins_poll,
    };
    drive_jenkins(&client, &job, reporter, cancel.clone())
        .await
        .map(drop)
        .map_err(|err| err.source.to_string())
}

/// A client of `job`'s server, with its API token opened; on failure the run's error code and
/// reason.
pub(super) fn client(
    worker: &Worker,
    job: &JenkinsJob<SealedSecret>,
) -> Result<JenkinsClient, (&'static str, String)> {
    let auth = match &job.credentials {
        Some(credentials) => {
            let token = worker.keyring.open(&credentials.api_token).map_err(|err| {
                (
                    "jenkins_auth_failed",
                    format!("cannot open the Jenkins API token: {err}"),
                )
            })?;
            Some((credentials.username.clone(), token.expose().to_owned()))
        }
        None => None,
    };
    JenkinsClient::new(job.url.base(), auth).map_err(|err| (err.kind.error_code(), err.to_string()))
}
