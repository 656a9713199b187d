//! [`drive_run`]: one run, from the working directory to `report_run_finished`.

use runledger_types::command::ReportRunFinished;
use runledger_types::values::RunStatus;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::workdir::{fetch_junit, prepare, relative};
use super::{NotReported, Reporter, RunJob, Transport, TransportErrorKind, output, watchdog};
use crate::classify::{Classification, ErrorCode, Exit, InfraError, Junit, RunEnd, classify};
use crate::junit::JunitReport;
use crate::render::{self, ExecPlan, RunSpec};
use crate::ssh::RemoteExit;

/// Executes `job` on `transport` and reports its output and its end through `reporter`.
///
/// The caller has already sent `report_run_started` (the claim) and connected the transport.
/// Steps: create the working directory `~/.runledger/runs/<run_id>`, upload the job's files into
/// it, run the command (inside the venv, with the merged env) while streaming
/// `report_run_output` chunks (`seq` from 1, stdout and stderr in arrival order, each chunk out
/// within 100 ms), kill the process group when `job.timeout` passes or `cancel` fires (`TERM`,
/// then `KILL` after [`KILL_GRACE`](super::KILL_GRACE)), fetch and parse the JUnit report if the
/// job names one, classify ([`classify`]), send `report_run_finished`, and remove the working
/// directory. Failures before the command starts (working directory, upload) end the run as
/// `error` (`upload_failed`, or the connection's own code); a file path or command that cannot be
/// used as given ends it as `failed`.
///
/// Returns the classification that was reported, or [`NotReported`] holding it when
/// `report_run_finished` could not be delivered.
#[tracing::instrument(skip_all, fields(run_id = %job.run_id))]
pub async fn drive_run<R: Reporter>(
    transport: &Transport,
    job: &RunJob,
    reporter: &R,
    cancel: CancellationToken,
) -> Result<Classification, NotReported<Classification>> {
    let (classification, exit_code, report, cleaned) =
        execute(transport, job, reporter, &cancel).await;
    tracing::info!(
        status = classification.status.as_str(),
        ?exit_code,
        "run ended"
    );
    let summary = report.as_ref().map(|r| r.summary);
    let tests = report.map(|r| r.tests).unwrap_or_default();
    let reported = match super::test_parts::send_in_parts(reporter, job.run_id, tests).await {
        Ok(tests) => {
            let report = ReportRunFinished {
                run_id: job.run_id,
                status: classification.status,
                exit_code,
                summary,
                reason: classification.reason.clone(),
                error_code: classification
                    .error_code
                    .map(|code| ErrorCode::as_str(code).to_owned()),
                tests,
            };
            reporter.send_report(&report).await
        }
        Err(error) => Err(error),
    };
    if !cleaned {
        let cleanup = render::ssh_exec_line(job.os, &render::cleanup_workdir(job.os, job.run_id));
        match transport.exec_quiet(&cleanup).await {
            Ok(RemoteExit::Code(0)) => {}
            other => tracing::warn!(?other, "removing the working directory failed"),
        }
    }
    match reported {
        Ok(()) => Ok(classification),
        Err(source) => Err(NotReported {
            outcome: classification,
            source,
        }),
    }
}

/// What [`execute`] ends with: the classification, the exit code, the JUnit report, and whether
/// the run script already removed the working directory.
type Executed = (Classification, Option<i32>, Option<JunitReport>, bool);

/// Everything up to the verdict.
async fn execute<R: Reporter>(
    transport: &Transport,
    job: &RunJob,
    reporter: &R,
    cancel: &CancellationToken,
) -> Executed {
    let began = std::time::Instant::now();
    // A pytest shard of a group keeps its tests at collection, through a plugin and its plan.
    let shard = job
        .shard
        .as_ref()
        .filter(|_| render::pytest::is_pytest(&job.command))
        .map(|shard| render::shard::plan(shard.index, &shard.split));
    let spec = RunSpec {
        run_id: job.run_id,
        venv_path: &job.venv_path,
        command: &job.command,
        test_case_env: &job.test_case_env,
        run_env: &job.run_env,
        tests: &job.tests,
        shard_plugin: shard.is_some(),
    };
    // Nothing to fetch afterwards: on Linux the script removes the working directory itself.
    let rendered = match &job.junit_xml {
        None => render::run_and_clean_up(job.os, &spec),
        Some(_) => Ok(None),
    }
    .and_then(|script| match script {
        Some(script) => Ok((script, true)),
        None => render::run(job.os, &spec).map(|script| (script, false)),
    });
    let (plan, self_cleaning) = match rendered {
        Ok((script, self_cleaning)) => (
            render::exec_plan(job.os, job.run_id, &script),
            self_cleaning,
        ),
        Err(error) => {
            let reason = format!("cannot run the command: {error}");
            return (failed(reason), None, None, false);
        }
    };
    let workdir = format!(".runledger/runs/{}", job.run_id);
    let mut files = Vec::with_capacity(job.files.len());
    for (path, contents) in &job.files {
        let Some(path) = relative(path) else {
            let reason = format!("file path {path:?} is not inside the working directory");
            return (failed(reason), None, None, false);
        };
        files.push((format!("{workdir}/{path}"), contents.as_slice()));
    }
    if let Some(plan) = &shard {
        let plugin = format!("{workdir}/{}.py", render::shard::PLUGIN_MODULE);
        files.push((plugin, render::shard::PLUGIN.as_bytes()));
        let plan_path = format!("{workdir}/{}", render::shard::PLAN_FILE);
        files.push((plan_path, plan.as_bytes()));
    }
    let script = match &plan {
        ExecPlan::Inline(line) => line.clone(),
        ExecPlan::Upload {
            path,
            contents,
            line,
        } => {
            files.push((path.clone(), contents.as_slice()));
            line.clone()
        }
    };
    if let Err(infra) = prepare(transport, job, &files).await {
        return (classify(&ended_by(infra)), None, None, false);
    }
    tracing::debug!(
        elapsed_ms = began.elapsed().as_millis(),
        "working directory ready"
    );
    if cancel.is_cancelled() {
        let end = RunEnd {
            cancelled: true,
            ..ended_by_nothing()
        };
        return (classify(&end), None, None, false);
    }

    let (sink, source) = mpsc::channel(64);
    let (marker_tx, marker_rx) = watch::channel(None);
    let (exec_done, exec_abort) = (CancellationToken::new(), CancellationToken::new());
    let exec = async {
        let sink = sink;
        let result = transport.exec(&script, &sink, &exec_abort).await;
        drop(sink);
        exec_done.cancel();
        result
    };
    let guard = watchdog::Watchdog {
        transport,
        os: job.os,
        timeout: job.timeout,
        cancel,
        exec_done: &exec_done,
        exec_abort: &exec_abort,
        marker: marker_rx,
    };
    let (result, pumped, stop) = tokio::join!(
        exec,
        output::pump(
            job.run_id,
            (job.after_seq, job.max_output_bytes),
            source,
            reporter,
            marker_tx,
        ),
        guard.run()
    );
    if pumped.unrecorded > 0 {
        tracing::warn!(pumped.unrecorded, "some output chunks were not recorded");
    }
    let (exit, infra) = match result {
        Ok(RemoteExit::Code(code)) => (Some(Exit::Code(i32::try_from(code).unwrap_or(-1))), None),
        Ok(RemoteExit::Signal { name, .. }) => (Some(Exit::Signal(name)), None),
        Ok(RemoteExit::Unknown) => (None, None),
        Err(error) if error.kind() == TransportErrorKind::Cancelled && stop.is_some() => {
            (None, None)
        }
        Err(error) => {
            let code = error.kind().error_code();
            let detail = format!("the command could not be run to its end: {error}");
            (None, Some(InfraError { code, detail }))
        }
    };
    let infra = infra.or_else(|| pumped.lost.as_ref().map(output::LostOutput::infra_error));
    tracing::debug!(elapsed_ms = began.elapsed().as_millis(), "command ended");
    let (junit, report) = match &job.junit_xml {
        None => (Junit::NotExpected, None),
        Some(path) => fetch_junit(transport, &workdir, path).await,
    };
    tracing::debug!(
        elapsed_ms = began.elapsed().as_millis(),
        "JUnit report read"
    );
    let exit_code = match exit {
        Some(Exit::Code(code)) => Some(code),
        _ => None,
    };
    // The script's own clean-up ran only if the command ended by itself and the shell saw it.
    let cleaned = self_cleaning && stop.is_none() && infra.is_none() && exit_code.is_some();
    let end = RunEnd {
        exit,
        timed_out: stop == Some(watchdog::Stop::TimedOut),
        cancelled: stop == Some(watchdog::Stop::Cancelled),
        infra,
        junit,
    };
    (classify(&end), exit_code, report, cleaned)
}

fn ended_by(infra: InfraError) -> RunEnd {
    RunEnd {
        infra: Some(infra),
        ..ended_by_nothing()
    }
}

fn ended_by_nothing() -> RunEnd {
    RunEnd {
        exit: None,
        timed_out: false,
        cancelled: false,
        infra: None,
        junit: Junit::NotExpected,
    }
}

/// The test case itself cannot be run as given: not an infrastructure error, so not retried.
fn failed(reason: String) -> Classification {
    Classification {
        status: RunStatus::Failed,
        error_code: None,
        reason: Some(reason),
    }
}
