//! The `accounts` read model: each user's role, where the current password hash is in the log
//! (never the hash itself), whether they are disabled, and the position of their stream's last
//! event, so that a login reads one row instead of folding the user's stream.

use super::lab::InventoryFold;
use super::{Fact, wire_name};
use crate::table::{KeyedRow, RowCache};
use runledger_readmodel::rows::{ACCOUNTS_TABLES, AccountRow};
use runledger_types::Event;

impl KeyedRow for AccountRow {
    type Key = String;
    fn key(&self) -> String {
        self.username.clone()
    }
}

/// Users are few: every row stays cached up to this many.
const CAPACITY: usize = 100_000;

/// The `accounts` fold.
pub fn accounts() -> InventoryFold<AccountRow> {
    InventoryFold::new(
        RowCache::new(&ACCOUNTS_TABLES[0], CAPACITY),
        |event| match event {
            Event::UserRegistered(e) => Some((e.username.as_str().to_owned(), true)),
            Event::PasswordChanged(e) => Some((e.username.as_str().to_owned(), false)),
            Event::UserDisabled(e) => Some((e.username.as_str().to_owned(), false)),
            Event::TokensRevoked(e) => Some((e.username.as_str().to_owned(), false)),
            _ => None,
        },
        fold_account,
    )
}

fn fold_account(rows: &mut RowCache<AccountRow>, fact: &Fact) {
    let touch =
        |rows: &mut RowCache<AccountRow>, username: &str, change: &dyn Fn(&mut AccountRow)| {
            rows.update(&username.to_owned(), |row| {
                change(row);
                row.position = fact.position;
                row.updated_at = fact.recorded_at;
            });
        };
    match &fact.event {
        Event::UserRegistered(e) => rows.create(AccountRow {
            username: e.username.as_str().to_owned(),
            role: wire_name(&e.role),
            password_position: fact.position,
            disabled: false,
            position: fact.position,
            password_changed_at: None,
            tokens_revoked_at: None,
            updated_at: fact.recorded_at,
        }),
        Event::PasswordChanged(e) => touch(rows, e.username.as_str(), &|row| {
            row.password_position = fact.position;
            row.password_changed_at = Some(fact.recorded_at);
        }),
        Event::UserDisabled(e) => touch(rows, e.username.as_str(), &|row| row.disabled = true),
        Event::TokensRevoked(e) => touch(rows, e.username.as_str(), &|row| {
            row.tokens_revoked_at = Some(fact.recorded_at);
        }),
        _ => {}
    }
}
