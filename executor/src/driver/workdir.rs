//! The run's working directory: creating it, uploading into it, reading its JUnit report.

use super::{RunJob, Transport, TransportErrorKind};
use crate::classify::{ErrorCode, InfraError, Junit};
use crate::junit::{self, JunitReport};
use crate::render;
use crate::ssh::RemoteExit;
use runledger_types::values::Os;

/// Creates the working directory and uploads the files into it.
///
/// A first attempt needs no command for that: the upload creates the directory and its parents
/// over SFTP, which saves starting a shell on the machine for every run (eight runs of a group
/// start at once, and each shell start competes with their tests' start). A retry first ends
/// whatever an earlier attempt on this machine left, in one command that also creates the
/// directory.
pub(super) async fn prepare(
    transport: &Transport,
    job: &RunJob,
    files: &[(String, &[u8])],
) -> Result<(), InfraError> {
    let code_of = |kind: TransportErrorKind| match kind {
        TransportErrorKind::File => ErrorCode::UploadFailed,
        other => other.error_code(),
    };
    if job.after_seq > 0 {
        // A retry: an earlier attempt on this machine may have left processes and files.
        let script = format!(
            "{}\n{}",
            render::end_leftovers(job.os, job.run_id),
            render::prepare_workdir(job.os, job.run_id)
        );
        end_leftovers(transport, job.os, &script, code_of).await?;
    }
    if files.is_empty() {
        // Nothing to upload: the run script creates the directory itself.
        return Ok(());
    }
    transport.upload(files).await.map_err(|error| InfraError {
        code: code_of(error.kind()),
        detail: format!("uploading the test case's files failed: {error}"),
    })
}

/// Runs a retry's `script`: the clean-up of an earlier attempt, and the directory's creation.
async fn end_leftovers(
    transport: &Transport,
    os: Os,
    script: &str,
    code_of: impl Fn(TransportErrorKind) -> ErrorCode,
) -> Result<(), InfraError> {
    match transport
        .exec_quiet(&render::ssh_exec_line(os, script))
        .await
    {
        Ok(RemoteExit::Code(0)) => Ok(()),
        Ok(exit) => Err(InfraError {
            code: ErrorCode::UploadFailed,
            detail: format!("creating the working directory failed: {exit:?}"),
        }),
        Err(error) => Err(InfraError {
            code: code_of(error.kind()),
            detail: format!("creating the working directory failed: {error}"),
        }),
    }
}

pub(super) async fn fetch_junit(
    transport: &Transport,
    workdir: &str,
    path: &str,
) -> (Junit, Option<JunitReport>) {
    let Some(rel) = relative(path) else {
        let why = format!("{path:?} is not inside the working directory");
        return (Junit::Unreadable(why), None);
    };
    let max = u64::try_from(junit::MAX_REPORT_BYTES).unwrap_or(u64::MAX);
    let bytes = match transport.download(&format!("{workdir}/{rel}"), max).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return (Junit::Unreadable(format!("{rel} was not written")), None),
        Err(error) => return (Junit::Unreadable(error.to_string()), None),
    };
    match junit::parse(&bytes) {
        Ok(report) => (Junit::Read(report.summary), Some(report)),
        Err(error) => (Junit::Unreadable(error.to_string()), None),
    }
}

/// `path` when it is relative and stays inside its base (no `..`, no root, no drive).
pub(super) fn relative(path: &str) -> Option<&str> {
    let inside = !path.is_empty()
        && !path.starts_with(['/', '\\', '~'])
        && !path.contains(':')
        && !path.split(['/', '\\']).any(|part| part == "..");
    inside.then_some(path)
}
