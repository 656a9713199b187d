//! A group's one answer from its members' (docs/groups.md): `running` until every member has
//! ended; then `cancelled` if the group was cancelled, `error` if any member ended in an
//! infrastructure error that survived its retries (its tests' verdict is unknown), `failed` if
//! any member failed, and `passed` only if every member passed.

use runledger_types::RunStatus;

/// What a group is, as its members make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupVerdict {
    /// A member has not ended.
    Running,
    /// Every member passed.
    Passed,
    /// A member failed (and none errored).
    Failed,
    /// A member ended in an error that survived its retries.
    Error,
    /// The group was cancelled.
    Cancelled,
}

/// The verdict of a group whose members are in `members` (their current statuses); `cancelled`
/// when `cancel_group` was decided for it.
pub fn verdict(members: &[RunStatus], cancelled: bool) -> GroupVerdict {
    if members.iter().any(|status| !status.is_final()) {
        return GroupVerdict::Running;
    }
    if cancelled || members.contains(&RunStatus::Cancelled) {
        return GroupVerdict::Cancelled;
    }
    if members.contains(&RunStatus::Error) {
        return GroupVerdict::Error;
    }
    if members.iter().any(|s| *s != RunStatus::Passed) {
        return GroupVerdict::Failed;
    }
    GroupVerdict::Passed
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::*;

    #[test]
    fn running_until_every_member_ends() {
        assert_eq!(verdict(&[Passed, Running], false), GroupVerdict::Running);
        assert_eq!(verdict(&[Queued], true), GroupVerdict::Running);
    }

    #[test]
    fn passed_only_when_every_member_passed() {
        assert_eq!(verdict(&[Passed, Passed], false), GroupVerdict::Passed);
        assert_eq!(verdict(&[Passed, Failed], false), GroupVerdict::Failed);
        assert_eq!(verdict(&[Passed, TimedOut], false), GroupVerdict::Failed);
    }

    #[test]
    fn an_error_outranks_a_failure_and_a_cancel_outranks_both() {
        assert_eq!(verdict(&[Failed, Error], false), GroupVerdict::Error);
        assert_eq!(
            verdict(&[Failed, Error, Cancelled], false),
            GroupVerdict::Cancelled
        );
        assert_eq!(verdict(&[Passed, Passed], true), GroupVerdict::Cancelled);
    }
}
