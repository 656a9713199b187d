//! The `machines`, `test_cases` and `users` read models: the lab's inventory. Each is one table
//! whose rows change only through their own events, so one [`InventoryFold`] serves all three
//! with a different event function.

use super::{Fact, json, keys_to_load, wire_name};
use crate::error::ProjectionError;
use crate::table::{KeyedRow, RowCache};
use runledger_readmodel::rows::{
    MACHINES_TABLES, MachineRow, TEST_CASES_TABLES, TestCaseRow, USERS_TABLES, UserRow,
};
use runledger_types::Event;
use runledger_types::event::{MachineRegistered, MachineUpdated, TestCaseDefined};
use runledger_types::jenkins::JenkinsJobView;
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

/// Inventories are small: every row stays cached up to this many.
const CAPACITY: usize = 100_000;

/// The row key an event touches, and whether the event creates that row.
type Touches<K> = fn(&Event) -> Option<(K, bool)>;

/// A fold over one inventory table.
#[derive(Debug)]
pub struct InventoryFold<R: KeyedRow> {
    rows: RowCache<R>,
    touches: Touches<R::Key>,
    fold: fn(&mut RowCache<R>, &Fact),
}

impl<R: KeyedRow> InventoryFold<R> {
    /// A fold over `rows` whose events are found by `touches` and folded by `fold`.
    pub(crate) fn new(
        rows: RowCache<R>,
        touches: Touches<R::Key>,
        fold: fn(&mut RowCache<R>, &Fact),
    ) -> Self {
        Self {
            rows,
            touches,
            fold,
        }
    }

    /// Loads the rows `facts` touch.
    pub async fn prepare(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        let keys = keys_to_load(facts, self.touches);
        self.rows.load(tx, schema, keys).await
    }

    /// Folds one event.
    pub fn apply(&mut self, fact: &Fact) {
        (self.fold)(&mut self.rows, fact);
    }

    /// Writes the batch's changes.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        self.rows.flush(tx, schema).await
    }

    /// After commit: rows stay cached.
    pub fn committed(&mut self) {
        self.rows.committed(|_| true);
    }

    /// Forgets cached rows and unwritten changes.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The cached row under `key`.
    pub fn row(&self, key: &R::Key) -> Option<&R> {
        self.rows.get(key)
    }
}

/// The `machines` fold (never a secret: only whether one is stored).
pub fn machines() -> InventoryFold<MachineRow> {
    InventoryFold {
        rows: RowCache::new(&MACHINES_TABLES[0], CAPACITY),
        touches: |event| match event {
            Event::MachineRegistered(e) => Some((e.machine_id.0, true)),
            Event::MachineUpdated(e) => Some((e.machine_id.0, false)),
            Event::HostKeyPinned(e) => Some((e.machine_id.0, false)),
            Event::MachineRetired(e) => Some((e.machine_id.0, false)),
            _ => None,
        },
        fold: fold_machine,
    }
}

fn fold_machine(rows: &mut RowCache<MachineRow>, fact: &Fact) {
    let touch = |rows: &mut RowCache<MachineRow>, id: Uuid, change: &dyn Fn(&mut MachineRow)| {
        rows.update(&id, |row| {
            change(row);
            row.updated_at = fact.recorded_at;
        });
    };
    match &fact.event {
        Event::MachineRegistered(e) => rows.create(registered(fact, e)),
        Event::MachineUpdated(e) => touch(rows, e.machine_id.0, &|row| updated(row, e)),
        Event::HostKeyPinned(e) => touch(rows, e.machine_id.0, &|row| {
            row.host_key = Some(e.fingerprint.as_str().to_owned());
        }),
        Event::MachineRetired(e) => touch(rows, e.machine_id.0, &|row| {
            row.retired = true;
            row.retired_at = Some(fact.recorded_at);
        }),
        _ => {}
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

fn defined(
    fact: &Fact,
    e: &TestCaseDefined,
    defined_at: chrono::DateTime<chrono::Utc>,
) -> TestCaseRow {
    TestCaseRow {
        test_case_id: e.test_case_id.0,
        name: e.name.as_str().to_owned(),
        description: e.description.clone(),
        command: e
            .command
            .as_ref()
            .map(|command| command.as_str().to_owned()),
        jenkins: e
            .jenkins
            .as_ref()
            .map(|job| json(&JenkinsJobView::from(job))),
        files: json(&e.files),
        env: json(&e.env),
        env_overridable: json(&e.env_overridable),
        timeout_s: i64::from(e.timeout_s),
        junit_xml: e.junit_xml.as_ref().map(|path| path.as_str().to_owned()),
        retries: i64::from(e.retries),
        max_output_bytes: i64::try_from(e.max_output_bytes).unwrap_or(i64::MAX),
        defined_by: fact.actor.clone(),
        defined_at,
        updated_at: fact.recorded_at,
    }
}

/// The `test_cases` fold: the latest definition, with the time of the first.
pub fn test_cases() -> InventoryFold<TestCaseRow> {
    InventoryFold {
        rows: RowCache::new(&TEST_CASES_TABLES[0], CAPACITY),
        // A test case may be defined again: its row is loaded to keep `defined_at`.
        touches: |event| match event {
            Event::TestCaseDefined(e) => Some((e.test_case_id.0, false)),
            _ => None,
        },
        fold: |rows, fact| {
            if let Event::TestCaseDefined(e) = &fact.event {
                let defined_at = rows
                    .get(&e.test_case_id.0)
                    .map_or(fact.recorded_at, |row| row.defined_at);
                rows.put(defined(fact, e, defined_at));
            }
        },
    }
}

/// The `users` fold (never the password hash).
pub fn users() -> InventoryFold<UserRow> {
    InventoryFold {
        rows: RowCache::new(&USERS_TABLES[0], CAPACITY),
        touches: |event| match event {
            Event::UserRegistered(e) => Some((e.username.as_str().to_owned(), true)),
            _ => None,
        },
        fold: |rows, fact| {
            if let Event::UserRegistered(e) = &fact.event {
                rows.create(UserRow {
                    username: e.username.as_str().to_owned(),
                    role: wire_name(&e.role),
                    registered_by: fact.actor.clone(),
                    registered_at: fact.recorded_at,
                });
            }
        },
    }
}
