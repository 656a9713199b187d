//! `register_user` (admins and trusted systems only; checked in [`crate::authz`]).

use super::reject;
use crate::state::Lab;
use runledger_types::command::RegisterUser;
use runledger_types::event::UserRegistered;
use runledger_types::{Event, PasswordHash, Rejection, RejectionCode};

/// A new user, unless the username is taken. The password arrives already hashed.
pub(super) fn register_user(
    lab: &Lab,
    command: &RegisterUser<PasswordHash>,
) -> Result<Vec<Event>, Rejection> {
    if lab.user(&command.username).is_some() {
        return reject(
            RejectionCode::UserExists,
            format!("user {} is already registered", command.username),
        );
    }
    Ok(vec![Event::UserRegistered(UserRegistered {
        username: command.username.clone(),
        role: command.role,
        password_hash: command.password.clone(),
    })])
}
