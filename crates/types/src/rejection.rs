//! Why a command was refused: a stable machine-readable code and a human message.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! codes {
    ($($variant:ident => $name:literal: $doc:literal),* $(,)?) => {
        /// Stable rejection codes; callers may match on them. Documented in `docs/commands.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum RejectionCode {
            $(#[doc = $doc] $variant,)*
        }

        impl RejectionCode {
            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    MalformedJson => "malformed_json": "The body is not valid JSON.",
    InvalidEnvelope => "invalid_envelope": "A required envelope field is missing or malformed.",
    TypeMismatch => "type_mismatch": "The body's `type` differs from the subject's last token.",
    UnknownCommandType => "unknown_command_type": "No such command type.",
    InvalidPayload => "invalid_payload": "The payload broke a field rule; the message names the field.",
    Forbidden => "forbidden": "The actor may not do this.",
    UserExists => "user_exists": "The username is taken.",
    UnknownUser => "unknown_user": "No user with that username.",
    UserDisabled => "user_disabled": "The user is disabled.",
    MachineExists => "machine_exists": "The machine id is taken.",
    UnknownMachine => "unknown_machine": "No machine with that id.",
    MachineRetired => "machine_retired": "The machine is retired.",
    VenvExists => "venv_exists": "The venv id is taken.",
    VenvNameTaken => "venv_name_taken": "Another venv on the machine has that name.",
    UnknownVenv => "unknown_venv": "No venv with that id.",
    VenvRemoved => "venv_removed": "The venv was removed.",
    VenvBroken => "venv_broken": "The venv failed to provision.",
    VenvInUse => "venv_in_use": "The venv is leased by a run.",
    VenvMachineMismatch => "venv_machine_mismatch": "The venv is not on the given machine.",
    VenvNotProvisioning => "venv_not_provisioning": "The venv is not waiting for provisioning.",
    TestCaseExists => "test_case_exists": "The test case id is taken.",
    UnknownTestCase => "unknown_test_case": "No test case with that id.",
    RunExists => "run_exists": "The run id is taken.",
    UnknownRun => "unknown_run": "No run with that id.",
    RunFinished => "run_finished": "The run has already finished.",
    RunNotAssigned => "run_not_assigned": "The run is not waiting for an executor to start it.",
    RunNotRunning => "run_not_running": "The run is not running.",
    CancelAlreadyRequested => "cancel_already_requested": "Cancellation was already requested.",
    ExecutorMismatch => "executor_mismatch": "Another executor holds the run.",
    OutputGap => "output_gap": "An output chunk whose predecessor is not recorded yet; send it again after that one.",
    LeaseRenewed => "lease_renewed": "The executor sent a heartbeat since its lease was judged expired.",
    HostKeyMismatch => "host_key_mismatch": "The reported host key differs from the pinned one.",
    NotAJenkinsRun => "not_a_jenkins_run": "The run's test case does not name a Jenkins job, or a Jenkins run was given a machine, labels or a venv.",
    JenkinsBuildRecorded => "jenkins_build_recorded": "The run already follows another Jenkins queue item or build.",
    EnvNotOverridable => "env_not_overridable": "A run's env names a variable its test case does not let runs set.",
    TooManyQueuedRuns => "too_many_queued_runs": "The actor already has the most runs waiting in the queue that one actor may have.",
    JenkinsOriginMismatch => "jenkins_origin_mismatch": "The reported Jenkins queue item or build URL is not on the scheme, host and port of the test case's Jenkins URL.",
    NotQuarantined => "not_quarantined": "The test is not quarantined.",
    QuarantineNotLapsed => "quarantine_not_lapsed": "The quarantine has no end, or its end has not passed yet.",
    RunNotFinished => "run_not_finished": "A rerun names a run that has not finished yet.",
    RerunTestCaseMismatch => "rerun_test_case_mismatch": "A rerun names a run of another test case.",
    NothingToRerun => "nothing_to_rerun": "The rerun run has no failing test in its last attempt.",
    UnknownTest => "unknown_test": "A selected test was never reported by a run of the test case.",
    SelectionTooLarge => "selection_too_large": "The selected tests' names would take more than the 100 KiB a run's `RUNLEDGER_TESTS` may carry.",
    GroupExists => "group_exists": "A group with this id already exists.",
    UnknownGroup => "unknown_group": "The group does not exist.",
    GroupFinished => "group_finished": "The group has already finished.",
    GroupMemberExists => "group_member_exists": "A member run's id, derived from the group's, is taken.",
    NoTestHistory => "no_test_history": "A sharded group needs the tests of its test case: no run of it reported any yet.",
    NotAGroupTestCase => "not_a_group_test_case": "Jenkins test cases run whole; they cannot be split or run as a matrix.",
    EventTooLarge => "event_too_large": "An event the command decided would not fit in one message of the event stream (NATS `max_payload`).",
    StorageError => "storage_error": "The command's events could not be stored.",
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command's reason, as published in its outcome and recorded in `command_rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Stable code.
    pub code: RejectionCode,
    /// What was wrong, for people.
    pub message: String,
}

impl Rejection {
    /// Builds a rejection.
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
