//! `disable_user`, `change_password` and `revoke_tokens`: who may, and what a disabled user
//! can still do (nothing).

use crate::testing::*;
use runledger_types::command::{CancelRun, ChangePassword, DisableUser, RevokeTokens, StartRun};
use runledger_types::event::{PasswordChanged, TokensRevoked, UserDisabled};
use runledger_types::{Command, Event, PasswordHash, RejectionCode, Username};

fn name(username: &str) -> Username {
    Username::parse(username).expect("username")
}

fn disable(username: &str) -> Command {
    Command::DisableUser(DisableUser {
        username: name(username),
    })
}

fn change_password(username: &str) -> Command {
    Command::ChangePassword(ChangePassword {
        username: name(username),
        password: PasswordHash("$argon2id$new".into()),
    })
}

fn revoke(username: &str) -> Command {
    Command::RevokeTokens(RevokeTokens {
        username: name(username),
    })
}

fn disabled(username: &str) -> Event {
    Event::UserDisabled(UserDisabled {
        username: name(username),
    })
}

fn with(mut events: Vec<Event>, more: &[Event]) -> Vec<Event> {
    events.extend_from_slice(more);
    events
}

#[test]
fn an_admin_disables_a_user() {
    let lab = given(&users())
        .when(ADMIN, disable(MEMBER))
        .then_expect(&[disabled(MEMBER)]);
    assert_eq!(lab.user(&name(MEMBER)).map(|u| u.disabled), Some(true));
}

#[test]
fn disabling_a_disabled_user_changes_nothing() {
    given(&with(users(), &[disabled(MEMBER)]))
        .when(ADMIN, disable(MEMBER))
        .then_expect(&[]);
}

#[test]
fn members_may_not_disable_anyone() {
    given(&users())
        .when(MEMBER, disable(OTHER))
        .then_reject(RejectionCode::Forbidden);
}

#[test]
fn an_admin_may_not_disable_themselves() {
    let rejection = given(&users())
        .when(ADMIN, disable(ADMIN))
        .then_reject(RejectionCode::Forbidden);
    assert!(rejection.message.contains("another admin"));
}

#[test]
fn an_unknown_user_cannot_be_disabled_or_changed() {
    given(&users())
        .when(ADMIN, disable("nobody"))
        .then_reject(RejectionCode::UnknownUser);
    given(&users())
        .when(ADMIN, change_password("nobody"))
        .then_reject(RejectionCode::UnknownUser);
    given(&users())
        .when(ADMIN, revoke("nobody"))
        .then_reject(RejectionCode::UnknownUser);
}

#[test]
fn a_disabled_user_may_send_no_command() {
    let run = Command::StartRun(StartRun {
        run_id: r(1),
        test_case_id: tc(1),
        machine_id: None,
        labels: Default::default(),
        venv_id: None,
        env: Default::default(),
        rerun_of: None,
        only: None,
        tests: Vec::new(),
    });
    let lab = with(world(), &[disabled(MEMBER)]);
    given(&lab)
        .when(MEMBER, run)
        .then_reject(RejectionCode::UserDisabled);
    let cancel = Command::CancelRun(CancelRun {
        run_id: r(1),
        reason: None,
    });
    given(&lab)
        .when(MEMBER, cancel)
        .then_reject(RejectionCode::UserDisabled);
    given(&lab)
        .when(MEMBER, change_password(MEMBER))
        .then_reject(RejectionCode::UserDisabled);
}

#[test]
fn a_user_changes_their_own_password() {
    given(&users())
        .when(MEMBER, change_password(MEMBER))
        .then_expect(&[Event::PasswordChanged(PasswordChanged {
            username: name(MEMBER),
            password_hash: PasswordHash("$argon2id$new".into()),
        })]);
}

#[test]
fn only_admins_change_other_users_passwords() {
    given(&users())
        .when(MEMBER, change_password(OTHER))
        .then_reject(RejectionCode::Forbidden);
    let (events, _) = given(&users()).when(ADMIN, change_password(OTHER)).events();
    assert_eq!(events.len(), 1);
}

#[test]
fn a_disabled_users_password_cannot_be_changed() {
    given(&with(users(), &[disabled(OTHER)]))
        .when(ADMIN, change_password(OTHER))
        .then_reject(RejectionCode::UserDisabled);
}

#[test]
fn admins_revoke_a_users_tokens_and_members_may_not() {
    given(&users())
        .when(ADMIN, revoke(MEMBER))
        .then_expect(&[Event::TokensRevoked(TokensRevoked {
            username: name(MEMBER),
        })]);
    given(&users())
        .when(MEMBER, revoke(MEMBER))
        .then_reject(RejectionCode::Forbidden);
}
