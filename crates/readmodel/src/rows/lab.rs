//! `rm_machines`, `rm_test_cases`, `rm_users`: the lab's inventory.

use crate::model::Table;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tables of the `machines` read model.
pub const MACHINES_TABLES: &[Table] = &[Table {
    name: "machines",
    columns: &[
        ("machine_id", "uuid NOT NULL"),
        ("name", "text NOT NULL"),
        ("host", "text NOT NULL"),
        ("port", "integer NOT NULL"),
        ("os", "text NOT NULL"),
        ("username", "text NOT NULL"),
        ("owner", "text NOT NULL"),
        ("labels", "text[] NOT NULL"),
        ("host_key", "text"),
        ("has_password", "boolean NOT NULL"),
        ("has_private_key", "boolean NOT NULL"),
        ("retired", "boolean NOT NULL"),
        ("registered_at", "timestamptz NOT NULL"),
        ("updated_at", "timestamptz NOT NULL"),
        ("retired_at", "timestamptz"),
    ],
    key: &["machine_id"],
    indexes: &["name"],
    deferred_key: false,
    contents: None,
}];

/// The tables of the `test_cases` read model.
pub const TEST_CASES_TABLES: &[Table] = &[Table {
    name: "test_cases",
    columns: &[
        ("test_case_id", "uuid NOT NULL"),
        ("name", "text NOT NULL"),
        ("description", "text NOT NULL"),
        ("command", "text"),
        ("jenkins", "jsonb"),
        ("files", "jsonb NOT NULL"),
        ("env", "jsonb NOT NULL"),
        ("env_overridable", "jsonb NOT NULL"),
        ("timeout_s", "bigint NOT NULL"),
        ("junit_xml", "text"),
        ("retries", "bigint NOT NULL"),
        ("max_output_bytes", "bigint NOT NULL"),
        ("defined_by", "text NOT NULL"),
        ("defined_at", "timestamptz NOT NULL"),
        ("updated_at", "timestamptz NOT NULL"),
    ],
    key: &["test_case_id"],
    indexes: &["name"],
    deferred_key: false,
    contents: None,
}];

/// The tables of the `users` read model.
pub const USERS_TABLES: &[Table] = &[Table {
    name: "users",
    columns: &[
        ("username", "text NOT NULL"),
        ("role", "text NOT NULL"),
        ("registered_by", "text NOT NULL"),
        ("registered_at", "timestamptz NOT NULL"),
    ],
    key: &["username"],
    indexes: &[],
    deferred_key: false,
    contents: None,
}];

/// A machine as anyone may see it: whether credentials are stored, never what they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct MachineRow {
    pub machine_id: Uuid,
    pub name: String,
    pub host: String,
    pub port: i32,
    /// `linux` or `windows`.
    pub os: String,
    /// The account runledger logs in as.
    pub username: String,
    /// Who registered it and may manage it.
    pub owner: String,
    pub labels: Vec<String>,
    /// The pinned `SHA256:...` fingerprint, once known.
    pub host_key: Option<String>,
    pub has_password: bool,
    pub has_private_key: bool,
    pub retired: bool,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// A test case as defined (the latest definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct TestCaseRow {
    pub test_case_id: Uuid,
    pub name: String,
    pub description: String,
    /// The command run inside the venv; absent for a Jenkins job.
    pub command: Option<String>,
    /// The Jenkins job (`url`, `job`, `parameters`, `username`; never the token).
    pub jenkins: Option<serde_json::Value>,
    /// The files copied into the run's directory, as defined.
    pub files: serde_json::Value,
    pub env: serde_json::Value,
    /// The names a run's env may set (a JSON array).
    pub env_overridable: serde_json::Value,
    pub timeout_s: i64,
    pub junit_xml: Option<String>,
    pub retries: i64,
    /// Most bytes of output a run records.
    pub max_output_bytes: i64,
    pub defined_by: String,
    pub defined_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A registered user, without the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct UserRow {
    pub username: String,
    /// `admin` or `member`.
    pub role: String,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
}
