//! Failure classification: how a run ended → its final status, `error_code` and `reason`, as
//! sent in `report_run_finished`. Retries apply to `error` (infrastructure) only.
//!
//! The first matching row wins:
//!
//! | # | what happened | status | `error_code` |
//! |---|---|---|---|
//! | 1 | cancel was requested | `cancelled` | — |
//! | 2 | the timeout passed | `timed_out` | — |
//! | 3 | an infrastructure error ([`ErrorCode`]), output that could not be recorded included | `error` | its code (`output_lost`) |
//! | 4 | no exit status (channel closed without one) | `error` | `ssh_connection_lost` |
//! | 5 | killed by `TERM`, `KILL`, `HUP` or `INT` (by someone else) | `error` | `process_killed` |
//! | 6 | killed by another signal (`SEGV`, `ABRT`, …): the test crashed | `failed` | — |
//! | 7 | a JUnit report was expected but is missing or unreadable, exit code 0 | `error` | `junit_unreadable` |
//! | 8 | exit code ≠ 0 | `failed` | — |
//! | 9 | exit code 0 but the JUnit report counts failures or errors | `failed` | — |
//! | 10 | exit code 0 | `passed` | — |
//!
//! An unreadable report with a non-zero exit code is `failed` (row 8): the test command failed,
//! most likely before it could write the report; the reason says both.

use runledger_types::values::{RunStatus, TestSummary};

/// Machine-readable causes of an `error` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The machine could not be reached (DNS, refused, connect timeout).
    SshUnreachable,
    /// The machine refused the credentials.
    SshAuthFailed,
    /// The machine presented another host key than the pinned one.
    HostKeyMismatch,
    /// The SSH connection dropped during the run.
    SshConnectionLost,
    /// The venv is missing or its interpreter does not start.
    VenvBroken,
    /// Creating the working directory or uploading the test case's files failed.
    UploadFailed,
    /// The executor stopped heartbeating while holding the run.
    ExecutorLost,
    /// The expected JUnit report is missing or malformed.
    JunitUnreadable,
    /// The process was ended by a signal the executor did not send.
    ProcessKilled,
    /// Part of the run's output could not be recorded (the bus stayed unreachable, or a
    /// handler kept refusing it), so the log's record of the run is incomplete.
    OutputLost,
}

impl ErrorCode {
    /// The wire name (`ssh_unreachable`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SshUnreachable => "ssh_unreachable",
            Self::SshAuthFailed => "ssh_auth_failed",
            Self::HostKeyMismatch => "host_key_mismatch",
            Self::SshConnectionLost => "ssh_connection_lost",
            Self::VenvBroken => "venv_broken",
            Self::UploadFailed => "upload_failed",
            Self::ExecutorLost => "executor_lost",
            Self::JunitUnreadable => "junit_unreadable",
            Self::ProcessKilled => "process_killed",
            Self::OutputLost => "output_lost",
        }
    }
}

/// How the remote process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (SSH `exit-signal` name without `SIG`: `TERM`, `SEGV`, …).
    Signal(String),
}

/// The JUnit side of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Junit {
    /// The test case names no report.
    NotExpected,
    /// The report was read.
    Read(TestSummary),
    /// The report is missing or malformed; why.
    Unreadable(String),
}

/// An infrastructure failure and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraError {
    /// What kind.
    pub code: ErrorCode,
    /// Human detail (`connection refused`, `host key SHA256:… is not the pinned one`, …).
    pub detail: String,
}

/// Everything known about how a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// The exit status, if one arrived.
    pub exit: Option<Exit>,
    /// The timeout passed and the executor killed the process.
    pub timed_out: bool,
    /// Cancel was requested and the executor killed the process.
    pub cancelled: bool,
    /// An infrastructure error, if any.
    pub infra: Option<InfraError>,
    /// The JUnit report's state.
    pub junit: Junit,
}

/// The verdict for `report_run_finished`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// A final status.
    pub status: RunStatus,
    /// Set for `error`.
    pub error_code: Option<ErrorCode>,
    /// Why, for every status but `passed`.
    pub reason: Option<String>,
}

impl Classification {
    /// True when a retry may help: infrastructure errors only.
    pub fn is_retryable(&self) -> bool {
        self.status == RunStatus::Error
    }
}

/// Applies the table of the module documentation.
pub fn classify(end: &RunEnd) -> Classification {
    if end.cancelled {
        return verdict(RunStatus::Cancelled, None, "cancelled on request".into());
    }
    if end.timed_out {
        return verdict(
            RunStatus::TimedOut,
            None,
            "the run exceeded its timeout".into(),
        );
    }
    if let Some(infra) = &end.infra {
        return verdict(RunStatus::Error, Some(infra.code), infra.detail.clone());
    }
    match &end.exit {
        None => verdict(
            RunStatus::Error,
            Some(ErrorCode::SshConnectionLost),
            "the process ended without an exit status".into(),
        ),
        Some(Exit::Signal(signal)) => by_signal(signal),
        Some(Exit::Code(code)) => by_exit_code(*code, &end.junit),
    }
}

fn by_signal(signal: &str) -> Classification {
    let reason = format!("the process was killed by signal {signal}");
    if matches!(signal, "TERM" | "KILL" | "HUP" | "INT") {
        verdict(RunStatus::Error, Some(ErrorCode::ProcessKilled), reason)
    } else {
        verdict(RunStatus::Failed, None, reason)
    }
}

fn by_exit_code(code: i32, junit: &Junit) -> Classification {
    match (code, junit) {
        (0, Junit::Unreadable(why)) => verdict(
            RunStatus::Error,
            Some(ErrorCode::JunitUnreadable),
            format!("the JUnit report could not be read: {why}"),
        ),
        (0, Junit::Read(s)) if s.failed > 0 || s.errors > 0 => verdict(
            RunStatus::Failed,
            None,
            format!(
                "exit code 0 but the JUnit report has {} failed and {} errors",
                s.failed, s.errors
            ),
        ),
        (0, _) => Classification {
            status: RunStatus::Passed,
            error_code: None,
            reason: None,
        },
        (code, Junit::Read(s)) => verdict(
            RunStatus::Failed,
            None,
            format!(
                "exited with code {code}: {} failed, {} errors",
                s.failed, s.errors
            ),
        ),
        (code, Junit::Unreadable(why)) => verdict(
            RunStatus::Failed,
            None,
            format!("exited with code {code}; the JUnit report could not be read: {why}"),
        ),
        (code, Junit::NotExpected) => {
            verdict(RunStatus::Failed, None, format!("exited with code {code}"))
        }
    }
}

fn verdict(status: RunStatus, error_code: Option<ErrorCode>, reason: String) -> Classification {
    Classification {
        status,
        error_code,
        reason: Some(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(exit: Option<Exit>) -> RunEnd {
        RunEnd {
            exit,
            timed_out: false,
            cancelled: false,
            infra: None,
            junit: Junit::NotExpected,
        }
    }

    fn summary(failed: u32, errors: u32) -> Junit {
        Junit::Read(TestSummary {
            passed: 3,
            failed,
            skipped: 1,
            errors,
            quarantined_failed: 0,
        })
    }

    fn infra(code: ErrorCode) -> Option<InfraError> {
        Some(InfraError {
            code,
            detail: format!("{} happened", code.as_str()),
        })
    }

    fn status_and_code(end: &RunEnd) -> (RunStatus, Option<&'static str>) {
        let c = classify(end);
        (c.status, c.error_code.map(ErrorCode::as_str))
    }

    #[test]
    fn row_1_cancel_wins_over_everything() {
        let e = RunEnd {
            cancelled: true,
            timed_out: true,
            infra: infra(ErrorCode::SshConnectionLost),
            ..end(None)
        };
        assert_eq!(classify(&e).status, RunStatus::Cancelled);
        assert_eq!(classify(&e).reason.as_deref(), Some("cancelled on request"));
    }

    #[test]
    fn row_2_timeout() {
        let e = RunEnd {
            timed_out: true,
            ..end(Some(Exit::Signal("KILL".into())))
        };
        assert_eq!(status_and_code(&e), (RunStatus::TimedOut, None));
    }

    #[test]
    fn row_3_infrastructure_errors_keep_their_code_and_detail() {
        use ErrorCode::*;
        for code in [
            SshUnreachable,
            SshAuthFailed,
            HostKeyMismatch,
            SshConnectionLost,
            VenvBroken,
            UploadFailed,
            ExecutorLost,
        ] {
            let e = RunEnd {
                infra: infra(code),
                ..end(Some(Exit::Code(0)))
            };
            let c = classify(&e);
            assert_eq!((c.status, c.error_code), (RunStatus::Error, Some(code)));
            assert_eq!(c.reason, Some(format!("{} happened", code.as_str())));
            assert!(c.is_retryable());
        }
    }

    #[test]
    fn row_4_no_exit_status() {
        assert_eq!(
            status_and_code(&end(None)),
            (RunStatus::Error, Some("ssh_connection_lost"))
        );
    }

    #[test]
    fn rows_5_and_6_signals() {
        let killed = end(Some(Exit::Signal("KILL".into())));
        assert_eq!(
            status_and_code(&killed),
            (RunStatus::Error, Some("process_killed"))
        );
        let crashed = end(Some(Exit::Signal("SEGV".into())));
        assert_eq!(status_and_code(&crashed), (RunStatus::Failed, None));
        assert_eq!(
            classify(&crashed).reason.as_deref(),
            Some("the process was killed by signal SEGV")
        );
    }

    #[test]
    fn row_7_unreadable_report_with_exit_0() {
        let e = RunEnd {
            junit: Junit::Unreadable("no such file".into()),
            ..end(Some(Exit::Code(0)))
        };
        assert_eq!(
            status_and_code(&e),
            (RunStatus::Error, Some("junit_unreadable"))
        );
    }

    #[test]
    fn row_8_non_zero_exit_is_a_test_failure() {
        let plain = end(Some(Exit::Code(1)));
        assert_eq!(status_and_code(&plain), (RunStatus::Failed, None));
        assert_eq!(
            classify(&plain).reason.as_deref(),
            Some("exited with code 1")
        );
        assert!(!classify(&plain).is_retryable());
        let with_report = RunEnd {
            junit: summary(2, 0),
            ..end(Some(Exit::Code(1)))
        };
        assert_eq!(
            classify(&with_report).reason.as_deref(),
            Some("exited with code 1: 2 failed, 0 errors")
        );
        let unreadable = RunEnd {
            junit: Junit::Unreadable("missing".into()),
            ..end(Some(Exit::Code(4)))
        };
        assert_eq!(status_and_code(&unreadable), (RunStatus::Failed, None));
    }

    #[test]
    fn row_9_exit_0_but_junit_failures() {
        for junit in [summary(1, 0), summary(0, 2)] {
            let e = RunEnd {
                junit,
                ..end(Some(Exit::Code(0)))
            };
            assert_eq!(status_and_code(&e), (RunStatus::Failed, None));
        }
    }

    #[test]
    fn row_10_passed() {
        for junit in [Junit::NotExpected, summary(0, 0)] {
            let c = classify(&RunEnd {
                junit,
                ..end(Some(Exit::Code(0)))
            });
            assert_eq!(
                c,
                Classification {
                    status: RunStatus::Passed,
                    error_code: None,
                    reason: None
                }
            );
        }
    }
}
