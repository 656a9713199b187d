//! `rm_accounts`: what a login checks about each user. No read model holds a password hash (they
//! are copied, dumped and read by more roles than the log's payloads are), so the row names the
//! log position of the event that set the current hash, and a login reads that one event.

use crate::model::Table;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The tables of the `accounts` read model.
pub const ACCOUNTS_TABLES: &[Table] = &[Table {
    name: "accounts",
    columns: &[
        ("username", "text NOT NULL"),
        ("role", "text NOT NULL"),
        ("password_position", "bigint NOT NULL"),
        ("disabled", "boolean NOT NULL"),
        ("position", "bigint NOT NULL"),
        ("password_changed_at", "timestamptz"),
        ("tokens_revoked_at", "timestamptz"),
        ("updated_at", "timestamptz NOT NULL"),
    ],
    key: &["username"],
    indexes: &[],
    deferred_key: false,
    contents: None,
}];

/// One user's credentials as the log last set them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct AccountRow {
    pub username: String,
    /// `admin` or `member`.
    pub role: String,
    /// The log position of the `user_registered` or `password_changed` carrying the current
    /// hash.
    pub password_position: i64,
    pub disabled: bool,
    /// The position of the last event of the user's stream folded into this row: a token
    /// issued against it is valid until a later revoking event.
    pub position: i64,
    pub password_changed_at: Option<DateTime<Utc>>,
    /// When `tokens_revoked` last ended the user's tokens.
    pub tokens_revoked_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}
