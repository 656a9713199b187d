//! Read-model columns that hold a closed set of words, decoded once into their types.

use crate::error::ReadModelError;
use runledger_types::{GroupStatus, Role, RunStatus};

/// `admin` or `member`.
pub(crate) fn role(raw: &str) -> Result<Role, ReadModelError> {
    match raw {
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        other => Err(ReadModelError::UnknownValue {
            column: "role",
            value: other.to_owned(),
        }),
    }
}

/// The word a role is stored as.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// A text column holding one word of a closed set, as read; converted to its type by
/// `#[sqlx(try_from = "Word")]` on the row's field, so a row is decoded once, on reading.
#[derive(Debug, sqlx::Type)]
#[sqlx(transparent)]
pub struct Word(String);

impl TryFrom<Word> for RunStatus {
    type Error = ReadModelError;

    fn try_from(word: Word) -> Result<Self, ReadModelError> {
        run_status(&word.0)
    }
}

impl TryFrom<Word> for GroupStatus {
    type Error = ReadModelError;

    fn try_from(word: Word) -> Result<Self, ReadModelError> {
        group_status(&word.0)
    }
}

/// A group status word (`running`, `passed`, `failed`, `error`, `cancelled`).
pub fn group_status(raw: &str) -> Result<GroupStatus, ReadModelError> {
    use GroupStatus as S;
    [S::Running, S::Passed, S::Failed, S::Error, S::Cancelled]
        .into_iter()
        .find(|status| status.as_str() == raw)
        .ok_or_else(|| ReadModelError::UnknownValue {
            column: "status",
            value: raw.to_owned(),
        })
}

/// A run status word (`queued`, ..., `cancelled`).
pub fn run_status(raw: &str) -> Result<RunStatus, ReadModelError> {
    use RunStatus as S;
    [
        S::Queued,
        S::Assigned,
        S::Running,
        S::Passed,
        S::Failed,
        S::Error,
        S::TimedOut,
        S::Cancelled,
    ]
    .into_iter()
    .find(|status| status.as_str() == raw)
    .ok_or_else(|| ReadModelError::UnknownValue {
        column: "status",
        value: raw.to_owned(),
    })
}

impl TryFrom<Word> for crate::rows::VenvStatus {
    type Error = ReadModelError;

    fn try_from(word: Word) -> Result<Self, ReadModelError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == word.0)
            .ok_or(ReadModelError::UnknownValue {
                column: "status",
                value: word.0,
            })
    }
}
