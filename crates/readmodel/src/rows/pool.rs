//! `rm_venvs`: the venv pool and the queue of waiting runs.

use crate::model::Table;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tables of the `venvs` read model.
pub const VENVS_TABLES: &[Table] = &[
    Table {
        name: "venvs",
        columns: &[
            ("venv_id", "uuid NOT NULL"),
            ("machine_id", "uuid NOT NULL"),
            ("name", "text NOT NULL"),
            ("path", "text NOT NULL"),
            ("python", "text NOT NULL"),
            ("requirements", "text[] NOT NULL"),
            ("status", "text NOT NULL"),
            ("run_id", "uuid"),
            ("python_version", "text"),
            ("failure_reason", "text"),
            ("leases", "bigint NOT NULL"),
            ("added_at", "timestamptz NOT NULL"),
            ("updated_at", "timestamptz NOT NULL"),
        ],
        key: &["venv_id"],
        indexes: &["machine_id, venv_id", "status, venv_id"],
        deferred_key: false,
        contents: None,
    },
    Table {
        name: "queue",
        columns: &[
            ("run_id", "uuid NOT NULL"),
            ("requested_by", "text NOT NULL"),
            ("test_case_id", "uuid NOT NULL"),
            ("machine_id", "uuid"),
            ("venv_id", "uuid"),
            ("labels", "text[] NOT NULL"),
            ("ticket", "bigint"),
            ("queued_at", "timestamptz"),
            ("reason", "text"),
        ],
        key: &["run_id"],
        indexes: &["ticket"],
        deferred_key: false,
        contents: None,
    },
];

/// Where a venv is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VenvStatus {
    /// Being created on its machine.
    Provisioning,
    /// Ready for a run.
    Free,
    /// Leased by a run.
    InUse,
    /// Provisioning failed.
    Broken,
    /// Removed from the pool.
    Removed,
}

impl VenvStatus {
    /// Every status, in life order.
    pub const ALL: [VenvStatus; 5] = [
        Self::Provisioning,
        Self::Free,
        Self::InUse,
        Self::Broken,
        Self::Removed,
    ];

    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Free => "free",
            Self::InUse => "in_use",
            Self::Broken => "broken",
            Self::Removed => "removed",
        }
    }
}

/// A venv: where it lives, its status and the run holding it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[allow(missing_docs)]
pub struct VenvRow {
    pub venv_id: Uuid,
    pub machine_id: Uuid,
    pub name: String,
    pub path: String,
    pub python: String,
    pub requirements: Vec<String>,
    #[sqlx(try_from = "crate::decode::Word")]
    pub status: VenvStatus,
    /// The run leasing it while `in_use`.
    pub run_id: Option<Uuid>,
    pub python_version: Option<String>,
    /// Why provisioning failed, when `broken`.
    pub failure_reason: Option<String>,
    /// How many runs have leased it.
    pub leases: i64,
    pub added_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A run that has no venv yet. `ticket` (the position of its `run_queued` event) orders the
/// queue; it is absent for the instant between `run_requested` and `run_queued`/`run_assigned`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct QueueRow {
    pub run_id: Uuid,
    pub requested_by: String,
    pub test_case_id: Uuid,
    /// The machine the request named, if any.
    pub machine_id: Option<Uuid>,
    /// The venv the request named, if any.
    pub venv_id: Option<Uuid>,
    pub labels: Vec<String>,
    pub ticket: Option<i64>,
    pub queued_at: Option<DateTime<Utc>>,
    /// The reason the handler gave when it queued the run.
    pub reason: Option<String>,
}
