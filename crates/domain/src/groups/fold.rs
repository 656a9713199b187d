//! How group events, and the ends of member runs, change the lab.

use crate::state::{GroupState, Lab, ShardSplit, distinct};
use runledger_types::event::{
    GroupCancelRequested, GroupFinished, GroupKind, GroupStarted, GroupTestsPlanned, RunFinished,
};
use runledger_types::{GroupStatus, RunId, RunStatus, TestSummary};
use std::sync::Arc;

/// The group starts with none of its members ended.
pub(crate) fn group_started(lab: &mut Lab, e: &GroupStarted) {
    let group = GroupState {
        test_case_id: e.test_case_id,
        user: e.user.clone(),
        kind: e.kind,
        members: e.members.iter().map(|member| member.run_id).collect(),
        ended: vec![None; e.members.len()],
        summary: TestSummary::default(),
        cancel_requested: false,
        split: e.unknown_ms.map(|unknown_ms| {
            Arc::new(ShardSplit {
                tests: e.members.iter().map(|m| m.tests.clone()).collect(),
                predicted_ms: e
                    .members
                    .iter()
                    .map(|m| m.predicted_ms.unwrap_or(0))
                    .collect(),
                unknown_ms,
            })
        }),
        reported: Vec::new(),
    };
    lab.groups.insert(e.group_id, group);
}

/// A part of a member's tests joins the split its shards read (a group of a command other than
/// pytest keeps no split: its members' runs carry their tests).
pub(crate) fn group_tests_planned(lab: &mut Lab, e: &GroupTestsPlanned) {
    let Some(split) = lab
        .groups
        .get_mut(&e.group_id)
        .and_then(|group| group.split.as_mut())
    else {
        return;
    };
    if let Some(tests) = Arc::make_mut(split).tests.get_mut(e.shard as usize) {
        tests.extend(e.tests.iter().cloned());
    }
}

pub(crate) fn group_cancel_requested(lab: &mut Lab, e: &GroupCancelRequested) {
    if let Some(group) = lab.groups.get_mut(&e.group_id) {
        group.cancel_requested = true;
    }
}

/// The group is done: only its verdict is kept. A sharded group that gave every test a verdict
/// tells its test case's suite.
pub(crate) fn group_finished(lab: &mut Lab, e: &GroupFinished) {
    let Some(group) = lab.groups.remove(&e.group_id) else {
        return;
    };
    lab.finished_groups.insert(e.group_id, e.status);
    let verdict_on_every_test = matches!(e.status, GroupStatus::Passed | GroupStatus::Failed);
    if group.kind == GroupKind::Shards && verdict_on_every_test && !group.reported.is_empty() {
        lab.suites
            .insert(group.test_case_id, distinct(&group.reported));
    }
}

/// A run ended. A whole-suite run that gave every test a verdict tells its test case's suite; a
/// group member's end is recorded in its group.
pub(crate) fn run_ended(lab: &mut Lab, e: &RunFinished) {
    // The run has ended: what it reported is needed only here, so it is taken, not copied.
    let Some(run) = lab.runs.get_mut(&e.run_id) else {
        return;
    };
    let verdict_on_every_test = matches!(e.status, RunStatus::Passed | RunStatus::Failed);
    let whole_suite = run.tests.is_empty() && verdict_on_every_test && !run.reported.is_empty();
    let test_case_id = run.test_case_id;
    let reported = std::mem::take(&mut run.reported);
    let Some(membership) = run.group.clone() else {
        if whole_suite {
            lab.suites.insert(test_case_id, distinct(&reported));
        }
        return;
    };
    let Some(group) = lab.groups.get_mut(&membership.group_id) else {
        return;
    };
    if let Some(slot) = group.ended.get_mut(membership.shard as usize) {
        *slot = Some(e.status);
    }
    if let Some(summary) = e.summary {
        group.summary = group.summary.merged(summary);
    }
    match group.kind {
        GroupKind::Shards => group.reported.extend(reported),
        GroupKind::Matrix if whole_suite => {
            lab.suites.insert(test_case_id, distinct(&reported));
        }
        GroupKind::Matrix => {}
    }
}

/// A member of a group left the queue for a venv: the group's other waiting members go to the
/// back of the queue, in their order, so every run that queued meanwhile gets a venv before the
/// group's next member (the fairness rule of docs/groups.md).
pub(crate) fn member_left_queue(lab: &mut Lab, run_id: RunId) {
    let Some(group_id) = lab
        .runs
        .get(&run_id)
        .and_then(|run| run.group.as_ref())
        .map(|membership| membership.group_id)
    else {
        return;
    };
    let Some(group) = lab.groups.get(&group_id) else {
        return;
    };
    let mut waiting: Vec<(u64, RunId)> = group
        .members
        .iter()
        .filter_map(|member| {
            let ticket = lab.runs.get(member)?.ticket?;
            Some((ticket, *member))
        })
        .collect();
    waiting.sort_unstable();
    for (old, member) in waiting {
        lab.queue.remove(&old);
        let ticket = lab.next_ticket;
        lab.next_ticket += 1;
        lab.queue.insert(ticket, member);
        if let Some(run) = lab.runs.get_mut(&member) {
            run.ticket = Some(ticket);
        }
    }
}
