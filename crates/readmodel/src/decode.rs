//! Read-model columns that hold a closed set of words, decoded once into their types.

use crate::error::ReadModelError;
use runledger_types::Role;

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
