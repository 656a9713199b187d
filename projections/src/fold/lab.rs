//! The `machines`, `test_cases` and `users` read models: the lab's inventory.

use super::{Fact, json, wire_name};
use crate::error::ProjectionError;
use crate::table::{KeyedRow, RowCache};
use runledger_readmodel::rows::{
    MACHINES_TABLES, MachineRow, TEST_CASES_TABLES, TestCaseRow, USERS_TABLES, UserRow,
};
use runledger_types::Event;
use runledger_types::event::{MachineRegistered, MachineUpdated, TestCaseDefined};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

impl KeyedRow for MachineRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.machine_id
    }
}

impl KeyedRow for TestCaseRow {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.test_case_id
    }
}

impl KeyedRow for UserRow {
    type Key = String;
    fn key(&self) -> String {
        self.username.clone()
    }
}

const CAPACITY: usize = 100_000;

/// Folds machine events into machine rows (never a secret: only whether one is stored).
#[derive(Debug)]
pub struct MachinesFold {
    rows: RowCache<MachineRow>,
}

impl Default for MachinesFold {
    fn default() -> Self {
        Self {
            rows: RowCache::new(&MACHINES_TABLES[0], CAPACITY),
        }
    }
}

impl MachinesFold {
    /// Loads the machine rows `facts` touch.
    pub async fn prepare(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        let keys = facts.iter().filter_map(|fact| match &fact.event {
            Event::MachineRegistered(e) => Some(e.machine_id.0),
            Event::MachineUpdated(e) => Some(e.machine_id.0),
            Event::HostKeyPinned(e) => Some(e.machine_id.0),
            Event::MachineRetired(e) => Some(e.machine_id.0),
            _ => None,
        });
        self.rows.load(tx, schema, keys).await
    }

    /// Folds one event.
    pub fn apply(&mut self, fact: &Fact) {
        match &fact.event {
            Event::MachineRegistered(e) => self.rows.put(registered(fact, e)),
            Event::MachineUpdated(e) => self.touch(fact, e.machine_id.0, |row| updated(row, e)),
            Event::HostKeyPinned(e) => self.touch(fact, e.machine_id.0, |row| {
                row.host_key = Some(e.fingerprint.as_str().to_owned());
            }),
            Event::MachineRetired(e) => self.touch(fact, e.machine_id.0, |row| {
                row.retired = true;
                row.retired_at = Some(fact.recorded_at);
            }),
            _ => {}
        }
    }

    fn touch(&mut self, fact: &Fact, machine_id: Uuid, change: impl FnOnce(&mut MachineRow)) {
        self.rows.update(&machine_id, |row| {
            change(row);
            row.updated_at = fact.recorded_at;
        });
    }

    /// Writes the batch's changes.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        self.rows.flush(tx, schema).await
    }

    /// After commit.
    pub fn committed(&mut self) {
        self.rows.committed(|_| true);
    }

    /// Forgets cached rows and unwritten changes.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The cached row of `machine_id`.
    pub fn row(&self, machine_id: Uuid) -> Option<&MachineRow> {
        self.rows.get(&machine_id)
    }
}

fn registered(fact: &Fact, e: &MachineRegistered) -> MachineRow {
    MachineRow {
        machine_id: e.machine_id.0,
        name: e.name.as_str().to_owned(),
        host: e.host.as_str().to_owned(),
        port: i32::from(e.port.get()),
        os: wire_name(&e.os),
        username: e.username.as_str().to_owned(),
        owner: e.owner.as_str().to_owned(),
        labels: e
            .labels
            .iter()
            .map(|label| label.as_str().to_owned())
            .collect(),
        host_key: e.host_key.as_ref().map(|key| key.as_str().to_owned()),
        has_password: e.password.is_some(),
        has_private_key: e.private_key.is_some(),
        retired: false,
        registered_at: fact.recorded_at,
        updated_at: fact.recorded_at,
        retired_at: None,
    }
}

fn updated(row: &mut MachineRow, e: &MachineUpdated) {
    if let Some(name) = &e.name {
        row.name = name.as_str().to_owned();
    }
    if let Some(host) = &e.host {
        row.host = host.as_str().to_owned();
    }
    if let Some(port) = e.port {
        row.port = i32::from(port.get());
    }
    if let Some(os) = &e.os {
        row.os = wire_name(os);
    }
    if let Some(username) = &e.username {
        row.username = username.as_str().to_owned();
    }
    row.has_password |= e.password.is_some();
    row.has_private_key |= e.private_key.is_some();
    if let Some(key) = &e.host_key {
        row.host_key = Some(key.as_str().to_owned());
    }
    if let Some(labels) = &e.labels {
        row.labels = labels
            .iter()
            .map(|label| label.as_str().to_owned())
            .collect();
    }
}

/// Folds test-case definitions into test-case rows.
#[derive(Debug)]
pub struct TestCasesFold {
    rows: RowCache<TestCaseRow>,
}

impl Default for TestCasesFold {
    fn default() -> Self {
        Self {
            rows: RowCache::new(&TEST_CASES_TABLES[0], CAPACITY),
        }
    }
}

impl TestCasesFold {
    /// Loads the rows `facts` touch.
    pub async fn prepare(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        let keys = facts.iter().filter_map(|fact| match &fact.event {
            Event::TestCaseDefined(e) => Some(e.test_case_id.0),
            _ => None,
        });
        self.rows.load(tx, schema, keys).await
    }

    /// Folds one event.
    pub fn apply(&mut self, fact: &Fact) {
        if let Event::TestCaseDefined(e) = &fact.event {
            let defined_at = self
                .rows
                .get(&e.test_case_id.0)
                .map_or(fact.recorded_at, |row| row.defined_at);
            self.rows.put(defined(fact, e, defined_at));
        }
    }

    /// Writes the batch's changes.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        self.rows.flush(tx, schema).await
    }

    /// After commit.
    pub fn committed(&mut self) {
        self.rows.committed(|_| true);
    }

    /// Forgets cached rows and unwritten changes.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The cached row of `test_case_id`.
    pub fn row(&self, test_case_id: Uuid) -> Option<&TestCaseRow> {
        self.rows.get(&test_case_id)
    }
}

fn defined(
    fact: &Fact,
    e: &TestCaseDefined,
    defined_at: chrono::DateTime<chrono::Utc>,
) -> TestCaseRow {
    TestCaseRow {
        test_case_id: e.test_case_id.0,
        name: e.name.as_str().to_owned(),
        description: e.description.clone(),
        command: e.command.as_str().to_owned(),
        files: json(&e.files),
        env: json(&e.env),
        timeout_s: i64::from(e.timeout_s),
        junit_xml: e.junit_xml.as_ref().map(|path| path.as_str().to_owned()),
        retries: i64::from(e.retries),
        defined_by: fact.actor.clone(),
        defined_at,
        updated_at: fact.recorded_at,
    }
}

/// Folds user registrations into user rows (never the password hash).
#[derive(Debug)]
pub struct UsersFold {
    rows: RowCache<UserRow>,
}

impl Default for UsersFold {
    fn default() -> Self {
        Self {
            rows: RowCache::new(&USERS_TABLES[0], CAPACITY),
        }
    }
}

impl UsersFold {
    /// Nothing to load: a registration replaces the whole row.
    pub fn apply(&mut self, fact: &Fact) {
        if let Event::UserRegistered(e) = &fact.event {
            self.rows.put(UserRow {
                username: e.username.as_str().to_owned(),
                role: wire_name(&e.role),
                registered_by: fact.actor.clone(),
                registered_at: fact.recorded_at,
            });
        }
    }

    /// Writes the batch's changes.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        self.rows.flush(tx, schema).await
    }

    /// After commit: users are never read back, so none stay cached.
    pub fn committed(&mut self) {
        self.rows.committed(|_| false);
    }

    /// Forgets unwritten changes.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The cached row of `username`, before commit.
    pub fn row(&self, username: &str) -> Option<&UserRow> {
        self.rows.get(&username.to_owned())
    }
}
