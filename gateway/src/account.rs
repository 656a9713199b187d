//! A user's account as a login sees it: folded from the user's own stream in the log
//! (`user-<username>`), never from a read model, so that a disabled user or a changed password
//! takes effect with the event that records it, not once a projector has caught up. The stream
//! holds a handful of events; reading it costs the same for a known and an unknown username.

use crate::error::ApiError;
use runledger_store::EventStore;
use runledger_types::{Event, PasswordHash, Role, StreamId};

/// What a login needs to know about one user.
#[derive(Debug, Clone)]
pub struct Account {
    /// `admin` or `member`.
    pub role: Role,
    /// The current argon2 hash.
    pub password_hash: PasswordHash,
    /// Disabled users may not log in.
    pub disabled: bool,
    /// The position of the stream's last event: a token issued now is valid until a later
    /// `user_disabled`, `password_changed` or `tokens_revoked`.
    pub position: i64,
}

impl Account {
    /// The account of `username`, if registered.
    #[tracing::instrument(skip(store))]
    pub async fn load(store: &EventStore, username: &str) -> Result<Option<Account>, ApiError> {
        let stream = StreamId::user(username);
        let records = store.read_stream(&stream).await?;
        let mut account: Option<Account> = None;
        for record in &records {
            let event = record.decode().map_err(ApiError::internal)?;
            account = fold(account, event, record.position);
        }
        Ok(account)
    }
}

/// One event of the user's stream applied to what came before.
fn fold(account: Option<Account>, event: Event, position: i64) -> Option<Account> {
    match (account, event) {
        (None, Event::UserRegistered(e)) => Some(Account {
            role: e.role,
            password_hash: e.password_hash,
            disabled: false,
            position,
        }),
        (Some(account), Event::PasswordChanged(e)) => Some(Account {
            password_hash: e.password_hash,
            position,
            ..account
        }),
        (Some(account), Event::UserDisabled(_)) => Some(Account {
            disabled: true,
            position,
            ..account
        }),
        (Some(account), _) => Some(Account {
            position,
            ..account
        }),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runledger_types::Username;
    use runledger_types::event::{PasswordChanged, UserDisabled, UserRegistered};

    fn mia() -> Username {
        Username::parse("mia").unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn the_latest_hash_and_the_disable_count() {
        let registered = Event::UserRegistered(UserRegistered {
            username: mia(),
            role: Role::Member,
            password_hash: PasswordHash("$old".into()),
        });
        let changed = Event::PasswordChanged(PasswordChanged {
            username: mia(),
            password_hash: PasswordHash("$new".into()),
        });
        let account = fold(fold(None, registered, 3), changed, 9);
        let account = account.unwrap_or_else(|| panic!("registered"));
        assert_eq!(account.password_hash.0, "$new");
        assert_eq!((account.position, account.disabled), (9, false));
        let disabled = fold(
            Some(account),
            Event::UserDisabled(UserDisabled { username: mia() }),
            12,
        );
        assert!(disabled.is_some_and(|a| a.disabled && a.position == 12));
    }
}
