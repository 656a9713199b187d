//! Accounts and sessions against a real Postgres: a login reads the account as fresh as the
//! user's stream, tokens end with revoking events, failed logins are counted and forgotten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Utc;
use common::{Lab, WAIT};
use runledger_readmodel::accounts::current_account;
use runledger_readmodel::sessions::{self, LoginLimits, NewToken};
use runledger_types::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_follows_its_users_events_and_its_tokens_end_with_them() {
    let lab = Lab::start().await;
    let registered = json!({"username": "mia", "role": "member", "password": "mia-password-1"});
    let position = lab.send("register_user", "bootstrap", registered).await;
    let account = current_account(lab.pool(), &lab.freshness, "mia", WAIT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((account.role, account.disabled), (Role::Member, false));
    assert!(account.password_hash.0.starts_with("$argon2id$"));
    assert_eq!(account.position, position);
    let unknown = current_account(lab.pool(), &lab.freshness, "nobody", WAIT).await;
    assert!(unknown.unwrap().is_none());

    let token_hash = [7u8; 32];
    let token = NewToken {
        token_hash: &token_hash,
        username: "mia",
        role: account.role,
        expires_at: Utc::now() + chrono::Duration::hours(1),
        user_position: account.position,
    };
    sessions::insert_token(lab.pool(), &token).await.unwrap();
    let valid = sessions::valid_token(lab.pool(), &token_hash)
        .await
        .unwrap();
    assert_eq!(
        valid.map(|t| (t.username, t.role)),
        Some(("mia".into(), Role::Member))
    );

    // The user's disabling ends the token as soon as the event is in the log.
    let outcome = lab
        .lab
        .client()
        .send("disable_user", "bootstrap", json!({"username": "mia"}))
        .await;
    assert!(outcome.accepted, "{outcome:?}");
    assert!(
        sessions::valid_token(lab.pool(), &token_hash)
            .await
            .unwrap()
            .is_none()
    );
    let account = current_account(lab.pool(), &lab.freshness, "mia", WAIT)
        .await
        .unwrap()
        .unwrap();
    assert!(account.disabled);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_and_failed_logins_wait() {
    let lab = Lab::start().await;
    let registered = json!({"username": "ada", "role": "admin", "password": "ada-password-1"});
    let position = lab.send("register_user", "bootstrap", registered).await;
    let token_hash = [9u8; 32];
    let token = NewToken {
        token_hash: &token_hash,
        username: "ada",
        role: Role::Admin,
        expires_at: Utc::now() + chrono::Duration::hours(1),
        user_position: position,
    };
    sessions::insert_token(lab.pool(), &token).await.unwrap();
    sessions::revoke_token(lab.pool(), &token_hash)
        .await
        .unwrap();
    assert!(
        sessions::valid_token(lab.pool(), &token_hash)
            .await
            .unwrap()
            .is_none()
    );

    let limits = LoginLimits {
        free_per_user: 1,
        ..LoginLimits::default()
    };
    let reserve = || sessions::reserve_attempt(lab.pool(), &limits, "ada", "10.0.0.1");
    assert_eq!(reserve().await.unwrap(), None);
    assert_eq!(
        reserve().await.unwrap(),
        None,
        "one free failure, then a wait"
    );
    assert!(reserve().await.unwrap().is_some_and(|wait| wait >= 1));
    sessions::attempt_succeeded(lab.pool(), "ada", "10.0.0.1")
        .await
        .unwrap();
    assert_eq!(
        reserve().await.unwrap(),
        None,
        "a success forgets the failures"
    );
    assert_eq!(sessions::prune_attempts(lab.pool()).await.unwrap(), 0);
    lab.stop().await;
}
