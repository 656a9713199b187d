//! Run groups: one suite split across the pool, or one run per combination of a matrix, with
//! one answer (docs/groups.md). How a suite is split by its tests' past durations ([`split`]),
//! how members' ends make the group's verdict ([`verdict`]), and how group events change the
//! lab ([`fold`]). The decisions are in `decide::groups`.

pub(crate) mod fold;
pub mod parts;
pub mod split;
pub mod verdict;

use runledger_types::{GroupId, RunId};
use uuid::Uuid;

/// The id of a group's member `shard`: decided, so a replay or a resent `start_group` names the
/// same runs. It keeps the group id's time (a UUID v7's first 48 bits), so members sort with
/// runs started at the same moment; the rest comes from the UUID v5 of the group id and index.
pub fn member_run_id(group_id: GroupId, shard: u32) -> RunId {
    let derived = Uuid::new_v5(&group_id.0, format!("shard-{shard}").as_bytes());
    let mut bytes = *derived.as_bytes();
    bytes[..6].copy_from_slice(&group_id.0.as_bytes()[..6]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    RunId(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_v7_distinct_and_stable() {
        let group = GroupId::new();
        let first = member_run_id(group, 0);
        assert_eq!(first, member_run_id(group, 0));
        assert_ne!(first, member_run_id(group, 1));
        assert_eq!(first.0.get_version_num(), 7);
        assert_eq!(first.0.as_bytes()[..6], group.0.as_bytes()[..6]);
    }
}
