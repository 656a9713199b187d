//! Evolve: folds one event into the lab. It never fails: an event in the log is a fact, so an
//! event naming something unknown (impossible when every event came from `decide`) only bumps
//! its stream's version.

use crate::groups;
use crate::quarantine::{failing_tests, test_id};
use crate::state::{
    Lab, MachineState, Quarantine, RecentDurations, ReportedTest, RunPhase, RunSelector, RunState,
    TestCaseState, VenvState, VenvStatus,
};
use runledger_types::command::{SelectedTest, TestResult};
use runledger_types::event::{
    MachineRegistered, MachineUpdated, RunAssigned, RunFinished, RunRequested, TestCaseDefined,
    TestQuarantined, VenvAdded,
};
use runledger_types::{Event, RunId, TestCaseId, VenvId};

/// Applies one event to the state, and bumps the version of the event's stream
/// (`event.stream_id()`) by one.
///
/// Rejection streams (`command-<id>`) are the exception: each holds exactly one
/// `command_rejected` event and nothing decides on them again, so their versions are not kept
/// (a flood of bad input must not grow the lab without bound); they always read as 0.
pub fn evolve(lab: &mut Lab, event: &Event) {
    if !matches!(event, Event::CommandRejected(_)) {
        let stream = event.stream_id();
        let version = lab.stream_version(&stream);
        lab.versions.insert(stream, version + 1);
    }
    match event {
        Event::UserRegistered(e) => {
            let user = crate::state::UserState {
                role: e.role,
                disabled: false,
            };
            lab.users.insert(e.username.clone(), user);
        }
        Event::MachineRegistered(e) => machine_registered(lab, e),
        Event::MachineUpdated(e) => machine_updated(lab, e),
        Event::HostKeyPinned(e) => {
            if let Some(machine) = lab.machines.get_mut(&e.machine_id) {
                machine.host_key = Some(e.fingerprint.clone());
            }
        }
        Event::MachineRetired(e) => {
            if let Some(machine) = lab.machines.get_mut(&e.machine_id) {
                machine.retired = true;
            }
        }
        Event::TestCaseDefined(e) => test_case_defined(lab, e),
        Event::UserDisabled(e) => {
            if let Some(user) = lab.users.get_mut(&e.username) {
                user.disabled = true;
            }
        }
        // Tokens and password hashes are the gateway's business, not the lab's.
        Event::PasswordChanged(_) | Event::TokensRevoked(_) => {}
        Event::ExecutorHeartbeat(_) | Event::CommandRejected(_) => {}
        Event::TestQuarantined(e) => test_quarantined(lab, e),
        Event::TestReleased(e) => {
            lab.quarantines.remove(&e.test_id);
        }
        Event::GroupStarted(e) => groups::fold::group_started(lab, e),
        Event::GroupTestsPlanned(e) => groups::fold::group_tests_planned(lab, e),
        Event::GroupCancelRequested(e) => groups::fold::group_cancel_requested(lab, e),
        Event::GroupFinished(e) => groups::fold::group_finished(lab, e),
        other => {
            evolve_venv(lab, other);
            evolve_run(lab, other);
        }
    }
}

fn machine_registered(lab: &mut Lab, e: &MachineRegistered) {
    let machine = MachineState {
        name: e.name.clone(),
        host: e.host.clone(),
        port: e.port,
        username: e.username.clone(),
        password: e.password.clone(),
        private_key: e.private_key.clone(),
        owner: e.owner.clone(),
        os: e.os,
        labels: e.labels.clone(),
        host_key: e.host_key.clone(),
        retired: false,
    };
    lab.machines.insert(e.machine_id, machine);
}

fn machine_updated(lab: &mut Lab, e: &MachineUpdated) {
    /// An update names only what changed: every field it leaves out keeps its value.
    fn set<T: Clone>(field: &mut T, new: Option<&T>) {
        if let Some(new) = new {
            field.clone_from(new);
        }
    }
    let Some(machine) = lab.machines.get_mut(&e.machine_id) else {
        return;
    };
    set(&mut machine.name, e.name.as_ref());
    set(&mut machine.host, e.host.as_ref());
    set(&mut machine.port, e.port.as_ref());
    set(&mut machine.os, e.os.as_ref());
    set(&mut machine.username, e.username.as_ref());
    set(&mut machine.labels, e.labels.as_ref());
    if e.password.is_some() {
        machine.password.clone_from(&e.password);
    }
    if e.private_key.is_some() {
        machine.private_key.clone_from(&e.private_key);
    }
    if e.host_key.is_some() {
        machine.host_key.clone_from(&e.host_key);
    }
}

fn test_case_defined(lab: &mut Lab, e: &TestCaseDefined) {
    let test_case = TestCaseState {
        name: e.name.clone(),
        command: e.command.clone(),
        jenkins: e.jenkins.clone(),
        files: e.files.clone(),
        env: e.env.clone(),
        env_overridable: e.env_overridable.clone(),
        timeout_s: e.timeout_s,
        junit_xml: e.junit_xml.clone(),
        retries: e.retries,
        max_output_bytes: e.max_output_bytes,
    };
    lab.test_cases.insert(e.test_case_id, test_case);
}

fn test_quarantined(lab: &mut Lab, e: &TestQuarantined) {
    let quarantine = Quarantine {
        reason: e.reason.clone(),
        until: e.until,
        by: e.by.clone(),
        test_case_id: e.test_case_id,
    };
    lab.quarantines.insert(e.test_id, quarantine);
}

fn evolve_venv(lab: &mut Lab, event: &Event) {
    match event {
        Event::VenvAdded(e) => venv_added(lab, e),
        Event::VenvProvisioned(e) => {
            if let Some(venv) = lab.venvs.get_mut(&e.venv_id) {
                venv.python_version.clone_from(&e.python_version);
            }
            set_venv(lab, e.venv_id, VenvStatus::Free)
        }
        Event::VenvProvisioningFailed(e) => set_venv(lab, e.venv_id, VenvStatus::Broken),
        Event::VenvLeased(e) => set_venv(lab, e.venv_id, VenvStatus::Leased(e.run_id)),
        Event::VenvReleased(e) => set_venv(lab, e.venv_id, VenvStatus::Free),
        Event::VenvRemoved(e) => set_venv(lab, e.venv_id, VenvStatus::Removed),
        _ => {}
    }
}

fn venv_added(lab: &mut Lab, e: &VenvAdded) {
    let venv = VenvState {
        machine_id: e.machine_id,
        name: e.name.clone(),
        path: e.path.clone(),
        python: e.python.clone(),
        requirements: e.requirements.clone(),
        status: VenvStatus::Provisioning,
        python_version: None,
    };
    lab.venvs.insert(e.venv_id, venv);
}

fn set_venv(lab: &mut Lab, venv_id: VenvId, status: VenvStatus) {
    if let Some(venv) = lab.venvs.get_mut(&venv_id) {
        venv.status = status;
        if status == VenvStatus::Free {
            lab.free_venvs.insert(venv_id);
        } else {
            lab.free_venvs.remove(&venv_id);
        }
    }
}

fn evolve_run(lab: &mut Lab, event: &Event) {
    match event {
        Event::RunRequested(e) => run_requested(lab, e),
        Event::RunQueued(e) => run_queued(lab, e.run_id),
        Event::RunAssigned(e) => run_assigned(lab, e),
        Event::RunStarted(e) => {
            lab.running.insert(e.run_id);
            with_run(lab, e.run_id, |run| {
                run.phase = RunPhase::Running;
                run.executor = Some(e.executor.clone());
            })
        }
        Event::RunOutput(e) => with_run(lab, e.run_id, |run| {
            run.last_seq = run.last_seq.max(e.seq);
        }),
        Event::RunTestsReported(e) => {
            let new_part = lab
                .runs
                .get(&e.run_id)
                .is_some_and(|run| e.part > run.tests_parts);
            if new_part {
                catalogue(lab, e.run_id, &e.tests);
            }
            with_run(lab, e.run_id, |run| {
                if new_part {
                    let failing = failing_tests(run.test_case_id, &e.tests);
                    run.failing_tests.extend(failing);
                }
                run.tests_parts = run.tests_parts.max(e.part);
            })
        }
        Event::RunCancelRequested(e) => with_run(lab, e.run_id, |run| {
            run.cancel_requested = true;
        }),
        Event::RunFinished(e) => run_finished(lab, e),
        Event::JenkinsBuildQueued(e) => with_run(lab, e.run_id, |run| {
            run.jenkins.get_or_insert_default().queue_item = Some(e.queue_item.clone());
        }),
        Event::JenkinsBuildStarted(e) => with_run(lab, e.run_id, |run| {
            run.jenkins.get_or_insert_default().build = Some((e.number, e.url.clone()));
        }),
        _ => {}
    }
}

fn run_requested(lab: &mut Lab, e: &RunRequested) {
    let run = RunState {
        test_case_id: e.test_case_id,
        user: e.user.clone(),
        env: e.env.clone(),
        selector: RunSelector {
            machine_id: e.machine_id,
            labels: e.labels.clone(),
            venv_id: e.venv_id,
            python: e.python.clone(),
        },
        phase: RunPhase::Requested,
        venv_id: None,
        machine_id: None,
        attempt: 0,
        executor: None,
        cancel_requested: false,
        last_seq: 0,
        tests_parts: 0,
        failing_tests: Vec::new(),
        jenkins: None,
        rerun_of: e.rerun_of,
        tests: e.tests.clone(),
        group: e.group.clone(),
        reported: Vec::new(),
        ticket: None,
    };
    lab.runs.insert(e.run_id, run);
}

fn run_queued(lab: &mut Lab, run_id: RunId) {
    // A retried run comes back to the queue from `running` or `assigned`.
    lab.running.remove(&run_id);
    let ticket = lab.next_ticket;
    let Some(run) = lab.runs.get_mut(&run_id) else {
        return;
    };
    run.phase = RunPhase::Queued;
    let earlier = run.ticket.replace(ticket);
    let user = run.user.clone();
    lab.next_ticket += 1;
    lab.queue.insert(ticket, run_id);
    match earlier {
        Some(earlier) => {
            lab.queue.remove(&earlier);
        }
        None => *lab.queued_by.entry(user).or_insert(0) += 1,
    }
}

fn run_assigned(lab: &mut Lab, e: &RunAssigned) {
    if leave_queue(lab, e.run_id) {
        groups::fold::member_left_queue(lab, e.run_id);
    }
    with_run(lab, e.run_id, |run| {
        run.phase = RunPhase::Assigned;
        run.venv_id = e.venv_id;
        run.machine_id = e.machine_id;
        run.attempt = e.attempt;
        run.tests_parts = 0;
        run.failing_tests.clear();
        run.reported.clear();
        run.executor = None;
        run.cancel_requested = false;
    });
}

/// The run ends; the failing results of its final report join its attempt's, which a rerun of
/// its failures selects.
fn run_finished(lab: &mut Lab, e: &RunFinished) {
    leave_queue(lab, e.run_id);
    lab.running.remove(&e.run_id);
    catalogue(lab, e.run_id, &e.tests);
    with_run(lab, e.run_id, |run| {
        let failing = failing_tests(run.test_case_id, &e.tests);
        run.failing_tests.extend(failing);
        run.phase = RunPhase::Finished(e.status)
    });
    groups::fold::run_ended(lab, e);
}

/// Records the tests of `results` (of run `run_id`): a test no run reported before, so a later
/// selection by test id can name it, and every result's duration, which a split expects the
/// test to take. The run keeps which tests it reported, for the suite it may tell.
fn catalogue(lab: &mut Lab, run_id: RunId, results: &[TestResult]) {
    let Some(test_case_id) = lab.runs.get(&run_id).map(|run| run.test_case_id) else {
        return;
    };
    let mut ids = Vec::with_capacity(results.len());
    for result in results {
        let id = test_id(test_case_id, result);
        ids.push(id);
        match lab.reported_tests.get_mut(&id) {
            Some(known) => known.durations.push(result.duration_ms),
            None => {
                lab.reported_tests
                    .insert(id, reported(test_case_id, result));
            }
        }
    }
    with_run(lab, run_id, |run| run.reported.extend(ids));
}

fn reported(test_case_id: TestCaseId, result: &TestResult) -> ReportedTest {
    let mut durations = RecentDurations::default();
    durations.push(result.duration_ms);
    ReportedTest {
        test_case_id,
        test: SelectedTest {
            classname: result.classname.clone(),
            name: result.name.clone(),
        },
        durations,
    }
}

/// Takes the run out of the queue; true when it was queued.
fn leave_queue(lab: &mut Lab, run_id: RunId) -> bool {
    let Some(run) = lab.runs.get_mut(&run_id) else {
        return false;
    };
    let Some(ticket) = run.ticket.take() else {
        return false;
    };
    let user = run.user.clone();
    lab.queue.remove(&ticket);
    if let Some(count) = lab.queued_by.get_mut(&user) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            lab.queued_by.remove(&user);
        }
    }
    true
}

fn with_run(lab: &mut Lab, run_id: RunId, change: impl FnOnce(&mut RunState)) {
    if let Some(run) = lab.runs.get_mut(&run_id) {
        change(run);
    }
}

/// [`evolve`], then [`Lab::forget_finished_run`] for a run the event finished: the fold a
/// long-running handler keeps. (The audit history's time travel uses [`evolve`], which keeps
/// every run.)
pub fn evolve_compact(lab: &mut Lab, event: &Event) {
    evolve(lab, event);
    if let Event::RunFinished(e) = event {
        lab.forget_finished_run(e.run_id);
    }
}
