//! How a sharded group's split is recorded: each member's tests in `group_tests_planned` parts
//! small enough for one message of the event stream, however large the suite.

use runledger_types::GroupId;
use runledger_types::command::SelectedTest;
use runledger_types::event::{GroupTestsPlanned, MAX_PLANNED_TESTS_BYTES, json_len};

/// The `group_tests_planned` events of member `shard`'s `tests`: in order, each part's tests at
/// most [`MAX_PLANNED_TESTS_BYTES`] as JSON (a single test larger than that makes a part of its
/// own); none for a member without tests.
pub fn planned_parts(
    group_id: GroupId,
    shard: u32,
    tests: &[SelectedTest],
) -> Vec<GroupTestsPlanned> {
    let mut parts = Vec::new();
    let mut current: Vec<SelectedTest> = Vec::new();
    let mut bytes = 0;
    for test in tests {
        // The test and the comma that separates it from the next.
        let size = json_len(test).saturating_add(1);
        if !current.is_empty() && bytes + size > MAX_PLANNED_TESTS_BYTES {
            parts.push(GroupTestsPlanned {
                group_id,
                shard,
                tests: std::mem::take(&mut current),
            });
            bytes = 0;
        }
        bytes += size;
        current.push(test.clone());
    }
    if !current.is_empty() {
        parts.push(GroupTestsPlanned {
            group_id,
            shard,
            tests: current,
        });
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use runledger_types::Event;

    fn test(i: usize) -> SelectedTest {
        SelectedTest {
            classname: "tests.test_a_module_with_a_long_name".into(),
            name: format!("test_case_with_a_descriptive_name_{i:06}"),
        }
    }

    #[test]
    fn a_large_members_tests_take_parts_that_each_fit_and_keep_their_order() {
        let group_id = GroupId::new();
        let tests: Vec<SelectedTest> = (0..30_000).map(test).collect();
        let parts = planned_parts(group_id, 3, &tests);
        assert!(parts.len() > 1, "{} parts", parts.len());
        for part in &parts {
            assert_eq!(part.shard, 3);
            assert!(json_len(&part.tests) <= MAX_PLANNED_TESTS_BYTES);
            // With the event's own fields it still fits well inside one NATS message.
            assert!(json_len(&Event::GroupTestsPlanned(part.clone())) < 300 * 1024);
        }
        let joined: Vec<SelectedTest> = parts.into_iter().flat_map(|p| p.tests).collect();
        assert_eq!(joined, tests);
    }

    #[test]
    fn a_small_member_takes_one_part_and_an_empty_one_none() {
        let group_id = GroupId::new();
        let parts = planned_parts(group_id, 0, &[test(1), test(2)]);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].tests, vec![test(1), test(2)]);
        assert!(planned_parts(group_id, 1, &[]).is_empty());
    }
}
