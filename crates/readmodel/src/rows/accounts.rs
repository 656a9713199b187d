//! `rm_accounts`: what a login checks about each user. Apart from `rm_users` (which anyone may
//! list) because it holds the argon2 hash: only the gateway reads it.

use crate::model::Table;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The tables of the `accounts` read model.
pub const ACCOUNTS_TABLES: &[Table] = &[Table {
    name: "accounts",
    columns: &[
        ("username", "text NOT NULL"),
        ("role", "text NOT NULL"),
        ("password_hash", "text NOT NULL"),
        ("disabled", "boolean NOT NULL"),
        ("position", "bigint NOT NULL"),
        ("password_changed_at", "timestamptz"),
        ("tokens_revoked_at", "timestamptz"),
        ("updated_at", "timestamptz NOT NULL"),
    ],
    key: &["username"],
    indexes: &[],
    deferred_key: false,
}];

/// One user's credentials as the log last set them.
#[derive(Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct AccountRow {
    pub username: String,
    /// `admin` or `member`.
    pub role: String,
    /// The current argon2 hash (PHC string).
    pub password_hash: String,
    pub disabled: bool,
    /// The position of the last event of the user's stream folded into this row: a token
    /// issued against it is valid until a later revoking event.
    pub position: i64,
    pub password_changed_at: Option<DateTime<Utc>>,
    /// When `tokens_revoked` last ended the user's tokens.
    pub tokens_revoked_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccountRow {
    /// Everything but the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRow")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}
