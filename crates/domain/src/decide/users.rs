//! The users' commands: `register_user` (admins and trusted systems only; checked in
//! [`crate::authz`]), `disable_user` and `revoke_tokens` (admins), `change_password` (the user
//! themselves, or an admin). Passwords arrive already hashed.

use super::reject;
use crate::authz::{Principal, forbidden, principal};
use crate::state::{Lab, UserState};
use runledger_types::command::{ChangePassword, DisableUser, RegisterUser, RevokeTokens};
use runledger_types::event::{PasswordChanged, TokensRevoked, UserDisabled, UserRegistered};
use runledger_types::{Actor, Event, PasswordHash, Rejection, RejectionCode, Username};

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

/// A disabled user's name acts no more: `user_disabled` for any command they send.
pub(super) fn refuse_disabled_actor(lab: &Lab, actor: &Actor) -> Result<(), Rejection> {
    let disabled = Username::parse(actor.as_str())
        .ok()
        .and_then(|name| lab.user(&name))
        .is_some_and(|user| user.disabled);
    if disabled {
        return reject(
            RejectionCode::UserDisabled,
            format!("user {actor} is disabled"),
        );
    }
    Ok(())
}

/// The user `username`, or `unknown_user`.
fn user<'a>(lab: &'a Lab, username: &Username) -> Result<&'a UserState, Rejection> {
    match lab.user(username) {
        Some(user) => Ok(user),
        None => reject(
            RejectionCode::UnknownUser,
            format!("user {username} is not registered"),
        ),
    }
}

/// `forbidden` for members: only admins (and trusted systems) may.
fn require_admin(lab: &Lab, actor: &Actor, what: &str) -> Result<(), Rejection> {
    if principal(lab, actor) == Principal::Member {
        return Err(forbidden(format!(
            "member {actor} may not {what}: only admins may"
        )));
    }
    Ok(())
}

/// `user_disabled`; disabling a disabled user changes nothing. Admins may not disable
/// themselves, so that the last admin cannot lock everyone out by mistake.
pub(super) fn disable_user(
    lab: &Lab,
    actor: &Actor,
    command: &DisableUser,
) -> Result<Vec<Event>, Rejection> {
    require_admin(lab, actor, "disable_user")?;
    let target = user(lab, &command.username)?;
    if actor.as_str() == command.username.as_str() {
        return Err(forbidden(format!(
            "{actor} may not disable themselves; ask another admin"
        )));
    }
    if target.disabled {
        return Ok(vec![]);
    }
    Ok(vec![Event::UserDisabled(UserDisabled {
        username: command.username.clone(),
    })])
}

/// `password_changed` for the user themselves or by an admin; never for a disabled user.
pub(super) fn change_password(
    lab: &Lab,
    actor: &Actor,
    command: &ChangePassword<PasswordHash>,
) -> Result<Vec<Event>, Rejection> {
    let target = user(lab, &command.username)?;
    if actor.as_str() != command.username.as_str() {
        require_admin(lab, actor, "change another user's password")?;
    }
    if target.disabled {
        return reject(
            RejectionCode::UserDisabled,
            format!("user {} is disabled", command.username),
        );
    }
    Ok(vec![Event::PasswordChanged(PasswordChanged {
        username: command.username.clone(),
        password_hash: command.password.clone(),
    })])
}

/// `tokens_revoked` (admins).
pub(super) fn revoke_tokens(
    lab: &Lab,
    actor: &Actor,
    command: &RevokeTokens,
) -> Result<Vec<Event>, Rejection> {
    require_admin(lab, actor, "revoke_tokens")?;
    user(lab, &command.username)?;
    Ok(vec![Event::TokensRevoked(TokensRevoked {
        username: command.username.clone(),
    })])
}
