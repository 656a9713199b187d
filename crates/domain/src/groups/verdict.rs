//! A group's one answer from its members' (docs/groups.md): `running` until every member has
//! ended; then `cancelled` if the group was cancelled, `error` if any member ended in an
//! infrastructure error that survived its retries (its tests' verdict is unknown), `failed` if
//! any member failed, and `passed` only if every member passed.

use runledger_types::{GroupStatus, RunStatus};

/// The verdict of a group whose members are in `members` (their current statuses); `cancelled`
/// when `cancel_group` was decided for it.
pub fn verdict(members: &[RunStatus], cancelled: bool) -> GroupStatus {
    if members.iter().any(|status| !status.is_final()) {
        return GroupStatus::Running;
    }
    if cancelled || members.contains(&RunStatus::Cancelled) {
        return GroupStatus::Cancelled;
    }
    if members.contains(&RunStatus::Error) {
        return GroupStatus::Error;
    }
    if members.iter().any(|s| *s != RunStatus::Passed) {
        return GroupStatus::Failed;
    }
    GroupStatus::Passed
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::*;

    #[test]
    fn running_until_every_member_ends() {
        assert_eq!(verdict(&[Passed, Running], false), GroupStatus::Running);
        assert_eq!(verdict(&[Queued], true), GroupStatus::Running);
    }

    #[test]
    fn passed_only_when_every_member_passed() {
        assert_eq!(verdict(&[Passed, Passed], false), GroupStatus::Passed);
        assert_eq!(verdict(&[Passed, Failed], false), GroupStatus::Failed);
        assert_eq!(verdict(&[Passed, TimedOut], false), GroupStatus::Failed);
    }

    #[test]
    fn an_error_outranks_a_failure_and_a_cancel_outranks_both() {
        assert_eq!(verdict(&[Failed, Error], false), GroupStatus::Error);
        assert_eq!(
            verdict(&[Failed, Error, Cancelled], false),
            GroupStatus::Cancelled
        );
        assert_eq!(verdict(&[Passed, Passed], true), GroupStatus::Cancelled);
    }
}
