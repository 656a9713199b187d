//! The `groups` read model: one row per run group, from its own stream's events. Its members'
//! progress is in `rm_runs`, whose rows carry their group and shard.

use super::lab::InventoryFold;
use super::{Fact, json, wire_name};
use crate::table::{KeyedRow, RowCache};
use runledger_readmodel::rows::{GROUPS_TABLES, GroupRow};
use runledger_types::event::GroupStarted;
use runledger_types::{Event, GroupStatus};
use uuid::Uuid;

impl KeyedRow for GroupRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.group_id
    }
}

/// Groups not yet finished stay cached between batches up to this many.
const CAPACITY: usize = 10_000;

/// The `groups` fold.
pub fn groups() -> InventoryFold<GroupRow> {
    InventoryFold::new(
        RowCache::new(&GROUPS_TABLES[0], CAPACITY),
        |event| match event {
            Event::GroupStarted(e) => Some((e.group_id.0, true)),
            Event::GroupTestsPlanned(e) => Some((e.group_id.0, false)),
            Event::GroupCancelRequested(e) => Some((e.group_id.0, false)),
            Event::GroupFinished(e) => Some((e.group_id.0, false)),
            _ => None,
        },
        fold_group,
    )
}

fn fold_group(rows: &mut RowCache<GroupRow>, fact: &Fact) {
    let touch = |rows: &mut RowCache<GroupRow>, group_id: Uuid, change: &dyn Fn(&mut GroupRow)| {
        rows.update(&group_id, |row| {
            change(row);
            row.last_position = fact.position;
            row.updated_at = fact.recorded_at;
        });
    };
    match &fact.event {
        Event::GroupStarted(e) => rows.create(started(fact, e)),
        // The row's plan holds each member's tests, as `group_started` once held them itself.
        Event::GroupTestsPlanned(e) => touch(rows, e.group_id.0, &|row| {
            let member = row
                .plan
                .as_array_mut()
                .and_then(|members| members.get_mut(e.shard as usize))
                .and_then(|member| member.as_object_mut());
            if let Some(member) = member {
                let tests = member
                    .entry("tests")
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let Some(tests) = tests.as_array_mut() {
                    tests.extend(e.tests.iter().map(json));
                }
            }
        }),
        Event::GroupCancelRequested(e) => touch(rows, e.group_id.0, &|row| {
            row.cancel_requested = true;
            row.cancel_reason.clone_from(&e.reason);
        }),
        Event::GroupFinished(e) => touch(rows, e.group_id.0, &|row| {
            row.status = e.status;
            row.finished_at = Some(fact.recorded_at);
            row.duration_ms = Some(
                (fact.recorded_at - row.started_at)
                    .num_milliseconds()
                    .max(0),
            );
            row.summary = Some(json(&e.summary));
        }),
        _ => {}
    }
}

fn started(fact: &Fact, e: &GroupStarted) -> GroupRow {
    let to_i64 = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX);
    GroupRow {
        group_id: e.group_id.0,
        status: GroupStatus::Running,
        kind: wire_name(&e.kind),
        requested_by: e.user.as_str().to_owned(),
        test_case_id: e.test_case_id.0,
        machine_id: e.machine_id.map(|id| id.0),
        labels: e.labels.iter().map(|l| l.as_str().to_owned()).collect(),
        env: json(&e.env),
        members: i32::try_from(e.members.len()).unwrap_or(i32::MAX),
        plan: json(&e.members),
        unknown_tests: i32::try_from(e.unknown_tests).unwrap_or(i32::MAX),
        ideal_ms: e.ideal_ms.map(to_i64),
        predicted_ms: e
            .members
            .iter()
            .filter_map(|m| m.predicted_ms)
            .max()
            .map(to_i64),
        started_at: fact.recorded_at,
        finished_at: None,
        duration_ms: None,
        summary: None,
        cancel_requested: false,
        cancel_reason: None,
        last_position: fact.position,
        updated_at: fact.recorded_at,
    }
}
