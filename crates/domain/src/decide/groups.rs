//! `start_group` and `cancel_group`, and the `group_finished` that follows a group's last
//! member's end, whichever decision ends it (docs/groups.md).
//!
//! A group's members are ordinary runs: each is requested, queued or assigned exactly as
//! `start_run` would, in shard order, so every rule of runs (leases, retries, cancellation, the
//! per-actor queue cap) holds for them.

use super::runs::{MAX_QUEUED_RUNS_PER_ACTOR, cancel_run, check_run_env};
use super::selection::fits_one_variable;
use super::{live_machine, reject, require_test_case};
use crate::authz::{Principal, forbidden, principal};
use crate::evolve;
use crate::groups::parts::planned_parts;
use crate::groups::split::{
    TestToSplit, ideal_makespan_ms, split_by_duration, unknown_expectation,
};
use crate::groups::{member_run_id, verdict::verdict};
use crate::scheduling::{assignment, free_venv_for, queue_reason};
use crate::state::{Lab, RunPhase, RunSelector, TestCaseState};
use runledger_types::command::{
    CancelGroup, CancelRun, Combination, MAX_SELECTION_BYTES, SelectedTest, StartGroup,
};
use runledger_types::event::{
    GroupCancelRequested, GroupFinished, GroupKind, GroupMemberPlan, GroupMembership, GroupStarted,
    RunQueued, RunRequested,
};
use runledger_types::{Actor, Event, GroupId, GroupStatus, Rejection, RejectionCode, RunStatus};
use std::collections::BTreeSet;

/// `group_started` with the plan, then each member's `run_requested` followed by its
/// `venv_leased` + `run_assigned` or its `run_queued`.
pub(super) fn start_group(
    lab: &Lab,
    actor: &Actor,
    command: &StartGroup,
) -> Result<Vec<Event>, Rejection> {
    let group_id = command.group_id;
    if lab.group(&group_id).is_some() || lab.finished_group(&group_id).is_some() {
        return reject(
            RejectionCode::GroupExists,
            format!("group {group_id} already exists"),
        );
    }
    let test_case = require_test_case(lab, command.test_case_id)?;
    if test_case.jenkins.is_some() {
        return reject(
            RejectionCode::NotAGroupTestCase,
            format!(
                "test case {} runs as a Jenkins job: it runs whole, it cannot be split or run as \
                 a matrix",
                command.test_case_id
            ),
        );
    }
    check_run_env(&command.env, command.test_case_id, test_case)?;
    if let Some(machine_id) = command.machine_id {
        live_machine(lab, machine_id)?;
    }
    let plan = match (command.shards, &command.matrix) {
        (Some(shards), _) => shard_plan(lab, command, test_case, shards)?,
        (None, Some(matrix)) => {
            let combinations = matrix.combinations();
            for combination in &combinations {
                check_run_env(&combination.env, command.test_case_id, test_case)?;
            }
            matrix_plan(command, combinations)
        }
        // Refused when the payload is parsed.
        (None, None) => return reject(RejectionCode::InvalidPayload, "no shards".into()),
    };
    for member in &plan.members {
        if lab.run(&member.run_id).is_some() || lab.forgotten_run(&member.run_id).is_some() {
            return reject(
                RejectionCode::GroupMemberExists,
                format!(
                    "member run {} of group {group_id} already exists",
                    member.run_id
                ),
            );
        }
    }
    request_members(lab, actor, command, plan)
}

/// What `group_started` records before the members are requested.
struct Plan {
    kind: GroupKind,
    members: Vec<GroupMemberPlan>,
    unknown_tests: u32,
    ideal_ms: Option<u64>,
    unknown_ms: Option<u64>,
}

/// The suite's tests split by their past durations into `shards` members.
///
/// A pytest suite's shards also place, at collection, the tests no shard was given (added
/// since the suite's latest whole run, or every test of a suite never run whole) with the same
/// rule, so such a suite needs no history and every shard is kept. Any other command's shards
/// run exactly their tests: it needs the suite's history, and a shard left without tests is
/// dropped (an empty selection would run the whole suite).
fn shard_plan(
    lab: &Lab,
    command: &StartGroup,
    test_case: &TestCaseState,
    shards: u32,
) -> Result<Plan, Rejection> {
    let pytest = test_case
        .command
        .as_ref()
        .is_some_and(|line| runledger_types::pytest::is_pytest(line.as_str()));
    let suite = match lab.suite(&command.test_case_id) {
        Some(suite) => suite.clone(),
        None if pytest => Default::default(),
        None => {
            return reject(
                RejectionCode::NoTestHistory,
                format!(
                    "test case {} has no run of its whole suite with a verdict yet, and its \
                     command is not one pytest invocation whose shards could split it at \
                     collection: start one run (`runledger run start`) so the group knows its \
                     tests and their durations",
                    command.test_case_id
                ),
            );
        }
    };
    let tests: Vec<TestToSplit> = suite
        .iter()
        .filter_map(|id| lab.reported_test(id))
        .map(|known| TestToSplit {
            classname: known.test.classname.clone(),
            name: known.test.name.clone(),
            p50_ms: known.durations.p50_ms(),
        })
        .collect();
    let unknown_tests = tests.iter().filter(|t| t.p50_ms.is_none()).count();
    let known: Vec<u64> = tests.iter().filter_map(|t| t.p50_ms).collect();
    let members: Vec<GroupMemberPlan> = split_by_duration(&tests, shards as usize)
        .into_iter()
        .filter(|shard| pytest || !shard.tests.is_empty())
        .enumerate()
        .map(|(index, shard)| {
            let shard_index = index as u32;
            GroupMemberPlan {
                shard: shard_index,
                run_id: member_run_id(command.group_id, shard_index),
                tests: shard
                    .tests
                    .into_iter()
                    .map(|(classname, name)| SelectedTest { classname, name })
                    .collect(),
                predicted_ms: Some(shard.predicted_ms),
                combination: None,
            }
        })
        .collect();
    if !pytest {
        // Each shard is given its tests in `RUNLEDGER_TESTS`: every one must fit.
        for member in &members {
            fits_one_variable(&member.tests, |count, bytes| {
                format!(
                    "payload.shards: test case {}'s command is not one pytest invocation, so each \
                     shard is given its tests in RUNLEDGER_TESTS, and shard {}'s {count} tests \
                     take {bytes} bytes, more than the {MAX_SELECTION_BYTES} it may carry: split \
                     into more shards",
                    command.test_case_id, member.shard
                )
            })?;
        }
    }
    Ok(Plan {
        kind: GroupKind::Shards,
        members,
        unknown_tests: u32::try_from(unknown_tests).unwrap_or(u32::MAX),
        ideal_ms: Some(ideal_makespan_ms(&known, shards as usize)),
        unknown_ms: pytest.then(|| unknown_expectation(&tests)),
    })
}

/// One member per combination, each running the whole suite.
fn matrix_plan(command: &StartGroup, combinations: Vec<Combination>) -> Plan {
    let members = combinations
        .into_iter()
        .enumerate()
        .map(|(index, combination)| {
            let shard = index as u32;
            GroupMemberPlan {
                shard,
                run_id: member_run_id(command.group_id, shard),
                tests: Vec::new(),
                predicted_ms: None,
                combination: Some(combination),
            }
        })
        .collect();
    Plan {
        kind: GroupKind::Matrix,
        members,
        unknown_tests: 0,
        ideal_ms: None,
        unknown_ms: None,
    }
}

/// The events of the plan: `group_started`, each member's tests in `group_tests_planned` parts
/// (a large suite's split does not fit one event), then each member requested and placed on the
/// state the earlier ones left, so two members never lease the same venv.
///
/// A pytest shard's `run_requested` names no tests: its pytest reads them from the split, so
/// the run carries no selection (which would also be limited in size). Other shards carry their
/// tests, which they are given in `RUNLEDGER_TESTS`.
fn request_members(
    lab: &Lab,
    actor: &Actor,
    command: &StartGroup,
    plan: Plan,
) -> Result<Vec<Event>, Rejection> {
    let started = Event::GroupStarted(GroupStarted {
        group_id: command.group_id,
        test_case_id: command.test_case_id,
        user: actor.clone(),
        kind: plan.kind,
        machine_id: command.machine_id,
        labels: command.labels.clone(),
        env: command.env.clone(),
        members: plan
            .members
            .iter()
            .map(|member| GroupMemberPlan {
                shard: member.shard,
                run_id: member.run_id,
                // They follow in `group_tests_planned` parts.
                tests: Vec::new(),
                predicted_ms: member.predicted_ms,
                combination: member.combination.clone(),
            })
            .collect(),
        unknown_tests: plan.unknown_tests,
        ideal_ms: plan.ideal_ms,
        unknown_ms: plan.unknown_ms,
    });
    let pytest_shards = plan.unknown_ms.is_some();
    let mut scratch = lab.clone();
    evolve(&mut scratch, &started);
    let mut events = vec![started];
    for member in &plan.members {
        for part in planned_parts(command.group_id, member.shard, &member.tests) {
            let part = Event::GroupTestsPlanned(part);
            evolve(&mut scratch, &part);
            events.push(part);
        }
    }
    for member in plan.members {
        let combination = member.combination.clone().unwrap_or_default();
        let mut labels = command.labels.clone();
        labels.extend(combination.labels.iter().cloned());
        let mut env = command.env.clone();
        env.extend(combination.env.clone());
        let requested = Event::RunRequested(RunRequested {
            run_id: member.run_id,
            test_case_id: command.test_case_id,
            user: actor.clone(),
            machine_id: command.machine_id,
            labels: labels.clone(),
            venv_id: None,
            env,
            rerun_of: None,
            tests: if pytest_shards {
                Vec::new()
            } else {
                member.tests
            },
            python: combination.python.clone(),
            group: Some(GroupMembership {
                group_id: command.group_id,
                shard: member.shard,
                combination: member.combination,
            }),
        });
        let selector = RunSelector {
            machine_id: command.machine_id,
            labels,
            venv_id: None,
            python: combination.python,
        };
        let mut decided = vec![requested];
        match free_venv_for(&scratch, &selector) {
            Some((venv_id, machine_id)) => {
                decided.extend(assignment(member.run_id, venv_id, machine_id, 1));
            }
            None if scratch.queued_by(actor) >= MAX_QUEUED_RUNS_PER_ACTOR => {
                return reject(
                    RejectionCode::TooManyQueuedRuns,
                    format!(
                        "{actor} would have more than {MAX_QUEUED_RUNS_PER_ACTOR} runs waiting \
                         in the queue with this group's members; start it once some have been \
                         assigned"
                    ),
                );
            }
            None => decided.push(Event::RunQueued(RunQueued {
                run_id: member.run_id,
                reason: queue_reason(&scratch, &selector).to_owned(),
            })),
        }
        for event in decided {
            evolve(&mut scratch, &event);
            events.push(event);
        }
    }
    Ok(events)
}

/// `group_cancel_requested`, then each unended member's cancellation as `cancel_run` decides
/// it: waiting members first, so a venv freed by an assigned member never goes to another
/// member of the same group.
pub(super) fn cancel_group(
    lab: &Lab,
    actor: &Actor,
    command: &CancelGroup,
) -> Result<Vec<Event>, Rejection> {
    let group_id = command.group_id;
    let Some(group) = lab.group(&group_id) else {
        return match lab.finished_group(&group_id) {
            Some(status) => reject(
                RejectionCode::GroupFinished,
                format!(
                    "group {group_id} has already finished ({})",
                    status.as_str()
                ),
            ),
            None => reject(
                RejectionCode::UnknownGroup,
                format!("group {group_id} does not exist"),
            ),
        };
    };
    if principal(lab, actor) == Principal::Member && group.user != *actor {
        return Err(forbidden(format!(
            "member {actor} may not cancel group {group_id}: it was started by {}",
            group.user
        )));
    }
    if group.cancel_requested {
        return reject(
            RejectionCode::CancelAlreadyRequested,
            format!("cancellation of group {group_id} was already requested"),
        );
    }
    let requested = Event::GroupCancelRequested(GroupCancelRequested {
        group_id,
        by: actor.clone(),
        reason: command.reason.clone(),
    });
    let mut scratch = lab.clone();
    evolve(&mut scratch, &requested);
    let mut events = vec![requested];
    let mut members: Vec<_> = group
        .members
        .iter()
        .filter_map(|run_id| {
            lab.run(run_id)
                .map(|run| (cancel_order(run.phase), *run_id))
        })
        .collect();
    members.sort();
    for (_, run_id) in members {
        let cancel = CancelRun {
            run_id,
            reason: command.reason.clone(),
        };
        // A member that already ended, or whose cancellation is already asked, stays as it is.
        let Ok(decided) = cancel_run(&scratch, &group.user, &cancel) else {
            continue;
        };
        for event in decided {
            evolve(&mut scratch, &event);
            events.push(event);
        }
    }
    Ok(events)
}

/// Waiting members are cancelled first, then assigned ones, then running ones.
fn cancel_order(phase: RunPhase) -> u8 {
    match phase {
        RunPhase::Requested | RunPhase::Queued => 0,
        RunPhase::Assigned => 1,
        RunPhase::Running | RunPhase::Finished(_) => 2,
    }
}

/// `decided` followed by `group_finished` for each group whose last unended member `decided`
/// ends: the group's verdict is decided by whichever decision ends it.
pub(super) fn then_close_groups(lab: &Lab, mut decided: Vec<Event>) -> Vec<Event> {
    let touched: BTreeSet<GroupId> = decided
        .iter()
        .filter_map(|event| match event {
            Event::RunFinished(e) => lab.run(&e.run_id)?.group.as_ref().map(|g| g.group_id),
            _ => None,
        })
        .collect();
    if touched.is_empty() {
        return decided;
    }
    let mut scratch = lab.clone();
    for event in &decided {
        evolve(&mut scratch, event);
    }
    for group_id in touched {
        let Some(group) = scratch.group(&group_id) else {
            continue;
        };
        let Some(ended) = group
            .ended
            .iter()
            .copied()
            .collect::<Option<Vec<RunStatus>>>()
        else {
            continue;
        };
        let status = verdict(&ended, group.cancel_requested);
        if status == GroupStatus::Running {
            continue;
        }
        decided.push(Event::GroupFinished(GroupFinished {
            group_id,
            status,
            summary: group.summary,
        }));
    }
    decided
}
