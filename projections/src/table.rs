//! A write-behind cache of one read-model table's rows.
//!
//! A batch of events first loads the rows it touches that are not cached (one query), folds the
//! events into the cached rows in memory, then writes every changed row back with one upsert and
//! one delete. The cache stays valid across batches while this projector is the only writer of
//! the schema; the engine clears it whenever that may not hold (a failed transaction, a
//! checkpoint moved by someone else).

use crate::copy::{copy_sql, encode_row};
use crate::error::ProjectionError;
use runledger_readmodel::Table;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// A row type of a read-model table keyed by one column.
pub trait KeyedRow: Serialize + DeserializeOwned + Clone {
    /// The key column's type.
    type Key: Hash
        + Eq
        + Clone
        + Send
        + Sync
        + for<'q> sqlx::Encode<'q, Postgres>
        + sqlx::Type<Postgres>
        + sqlx::postgres::PgHasArrayType;
    /// The row's key.
    fn key(&self) -> Self::Key;

    /// Appends the row to `out` as a line of COPY text for `table`. The default goes through
    /// serde ([`encode_row`]); a row a rebuild writes thousands of at once may do it by hand.
    fn copy_line(&self, table: &Table, out: &mut String) -> Result<(), ProjectionError> {
        encode_row(table, self, out)
    }
}

#[derive(Debug)]
struct Entry<R> {
    /// `None`: no such row (never existed or deleted).
    row: Option<R>,
    dirty: bool,
    /// The database may hold a row under this key (so a deletion must be written).
    stored: bool,
}

/// Cached rows of one table, with the changes not yet written.
#[derive(Debug)]
pub struct RowCache<R: KeyedRow> {
    table: &'static Table,
    entries: HashMap<R::Key, Entry<R>>,
    /// The keys changed since the last commit (a key may repeat).
    changed: Vec<R::Key>,
    /// Cached rows beyond this many are dropped after a flush.
    capacity: usize,
}

impl<R: KeyedRow> RowCache<R> {
    /// An empty cache over `table`.
    pub fn new(table: &'static Table, capacity: usize) -> Self {
        Self {
            table,
            entries: HashMap::new(),
            changed: Vec::new(),
            capacity,
        }
    }

    /// Loads the rows of `keys` that are not cached yet.
    pub async fn load(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        keys: impl IntoIterator<Item = R::Key>,
    ) -> Result<(), ProjectionError> {
        let missing: Vec<R::Key> = keys
            .into_iter()
            .filter(|key| !self.entries.contains_key(key))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let found: Vec<String> = sqlx::query_scalar(&self.table.select_by_key_sql(schema))
            .bind(&missing)
            .fetch_all(&mut **tx)
            .await?;
        for key in missing {
            self.entries.insert(
                key,
                Entry {
                    row: None,
                    dirty: false,
                    stored: false,
                },
            );
        }
        for json in found {
            let row: R = serde_json::from_str(&json).map_err(|err| {
                ProjectionError::Corrupt(format!("{}.{} row: {err}", schema, self.table.name))
            })?;
            self.entries.insert(
                row.key(),
                Entry {
                    row: Some(row),
                    dirty: false,
                    stored: true,
                },
            );
        }
        Ok(())
    }

    /// The row under `key`, if cached and present.
    pub fn get(&self, key: &R::Key) -> Option<&R> {
        self.entries.get(key).and_then(|entry| entry.row.as_ref())
    }

    /// Changes the row under `key` (if present) and marks it for writing.
    pub fn update(&mut self, key: &R::Key, change: impl FnOnce(&mut R)) -> bool {
        match self.entries.get_mut(key) {
            Some(Entry {
                row: Some(row),
                dirty,
                ..
            }) => {
                change(row);
                // A dirty entry is listed already: listing it once per batch, not once per
                // change, keeps a batch of many changes to few rows small.
                if !*dirty {
                    *dirty = true;
                    self.changed.push(key.clone());
                }
                true
            }
            _ => false,
        }
    }

    /// Stores `row` (new or replacing) and marks it for writing.
    pub fn put(&mut self, row: R) {
        let stored = self
            .entries
            .get(&row.key())
            .is_none_or(|entry| entry.stored);
        self.insert(row.key(), Some(row), stored);
    }

    /// Stores `row` from the event that creates it: unless cached otherwise, the database
    /// cannot hold it yet, so deleting it before it is written costs no statement.
    pub fn create(&mut self, row: R) {
        let stored = self
            .entries
            .get(&row.key())
            .is_some_and(|entry| entry.stored);
        self.insert(row.key(), Some(row), stored);
    }

    /// Deletes the row under `key` and marks the deletion for writing.
    pub fn delete(&mut self, key: R::Key) {
        let stored = self.entries.get(&key).is_none_or(|entry| entry.stored);
        self.insert(key, None, stored);
    }

    fn insert(&mut self, key: R::Key, row: Option<R>, stored: bool) {
        let dirty = true;
        self.changed.push(key.clone());
        self.entries.insert(key, Entry { row, dirty, stored });
    }

    /// Writes every change: new rows with one `COPY`, changed rows with one upsert, deleted
    /// ones with one `DELETE`.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        let mut new_rows: Vec<&R> = Vec::new();
        let mut upserts: Vec<&R> = Vec::new();
        let mut deletes: Vec<R::Key> = Vec::new();
        let mut seen = HashSet::new();
        for key in &self.changed {
            let Some(entry) = self.entries.get(key) else {
                continue;
            };
            if !entry.dirty || !seen.insert(key) {
                continue;
            }
            match (&entry.row, entry.stored) {
                (Some(row), false) => new_rows.push(row),
                (Some(row), true) => upserts.push(row),
                (None, true) => deletes.push(key.clone()),
                (None, false) => {}
            }
        }
        if !new_rows.is_empty() {
            let mut text = String::with_capacity(new_rows.len() * 256);
            for row in new_rows {
                row.copy_line(self.table, &mut text)?;
            }
            copy_text(tx, self.table, schema, text).await?;
        }
        write_rows(tx, &self.table.upsert_sql(schema), &upserts).await?;
        if !deletes.is_empty() {
            sqlx::query(&self.table.delete_by_key_sql(schema))
                .bind(&deletes)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// After a committed flush: everything is clean and stored; changed rows `keep` refuses are
    /// dropped, and the least useful half of the cache when it grew past its capacity.
    pub fn committed(&mut self, keep: impl Fn(&R) -> bool) {
        for key in std::mem::take(&mut self.changed) {
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            match &entry.row {
                Some(row) if keep(row) => {
                    entry.dirty = false;
                    entry.stored = true;
                }
                _ => {
                    self.entries.remove(&key);
                }
            }
        }
        if self.entries.len() > self.capacity {
            // Rare, so amortised: any half will do, as a miss only costs a load.
            let mut budget = self.capacity / 2;
            self.entries.retain(|_, _| {
                budget = budget.saturating_sub(1);
                budget > 0
            });
        }
    }

    /// Forgets everything, written or not: after a failed transaction, or when another writer
    /// may have changed the table.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.changed.clear();
    }
}

/// Sends rows already in COPY text form (see [`crate::copy`]) into `table`.
pub async fn copy_text(
    tx: &mut Transaction<'_, Postgres>,
    table: &Table,
    schema: &str,
    text: String,
) -> Result<(), ProjectionError> {
    if text.is_empty() {
        return Ok(());
    }
    let mut copy = tx.copy_in_raw(&copy_sql(table, schema)).await?;
    copy.send(text.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// Inserts or replaces `rows` (serialised as one JSON array) in `table`.
pub async fn upsert_rows<R: Serialize>(
    tx: &mut Transaction<'_, Postgres>,
    table: &Table,
    schema: &str,
    rows: &[R],
) -> Result<(), ProjectionError> {
    write_rows(tx, &table.upsert_sql(schema), rows).await
}

async fn write_rows<R: Serialize>(
    tx: &mut Transaction<'_, Postgres>,
    sql: &str,
    rows: &[R],
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(rows)
        .map_err(|err| ProjectionError::Corrupt(format!("row does not serialise: {err}")))?;
    sqlx::query(sql).bind(json).execute(&mut **tx).await?;
    Ok(())
}
