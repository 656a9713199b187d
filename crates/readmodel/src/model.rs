//! Which read models exist, the Postgres schema each lives in, and their tables.
//!
//! Table layouts are declared here once, as data: the projector creates them from it, writes
//! rows with one generic upsert per table, and rebuilds create the same tables in a fresh schema.

use crate::error::ReadModelError;
use std::fmt;

/// One read model: a set of tables the projector keeps as a function of the log, with its own
/// checkpoint, rebuilt on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReadModel {
    /// Run history and each run's output.
    Runs,
    /// The venv pool and the queue of waiting runs.
    Venvs,
    /// Machines, without any secret.
    Machines,
    /// Test cases.
    TestCases,
    /// Users, without password hashes.
    Users,
    /// What a login checks: role, password hash, disabled, the last revoking event.
    Accounts,
    /// Every test's results across runs, and its insight figures.
    Tests,
    /// Run groups: their plans, verdicts and timings.
    Groups,
}

/// Every read model, in the order the projector applies them.
pub const ALL: [ReadModel; 8] = [
    ReadModel::Runs,
    ReadModel::Venvs,
    ReadModel::Machines,
    ReadModel::TestCases,
    ReadModel::Users,
    ReadModel::Accounts,
    ReadModel::Tests,
    ReadModel::Groups,
];

/// A read-model table: its columns (name, SQL type), primary key and secondary indexes.
#[derive(Debug)]
pub struct Table {
    /// Table name inside the read model's schema.
    pub name: &'static str,
    /// `(column, SQL type)` in table order; rows serialise with the same names. A column
    /// declared `COMPRESSION lz4` holds bulk payload (a history's arrays, recent results as
    /// JSON): lz4 takes it many times faster than the default pglz, and `ANALYZE` leaves it out.
    pub columns: &'static [(&'static str, &'static str)],
    /// Primary-key columns.
    pub key: &'static [&'static str],
    /// Secondary indexes as column lists, created after a rebuild has loaded the rows.
    pub indexes: &'static [&'static str],
    /// True for a table rows are only ever inserted into (by `COPY`) and never looked up by
    /// the projector: its primary key is added after a rebuild's load, like the indexes.
    pub deferred_key: bool,
    /// For a table whose rows depend on how events were batched (a history kept in chunks):
    /// a query of its logical rows in `{schema}`, which a rebuild reproduces exactly however
    /// its physical rows were cut. `None`: the rows themselves.
    pub contents: Option<&'static str>,
}

impl ReadModel {
    /// The name used on the command line and in `projection_checkpoints`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runs => "runs",
            Self::Venvs => "venvs",
            Self::Machines => "machines",
            Self::TestCases => "test_cases",
            Self::Users => "users",
            Self::Accounts => "accounts",
            Self::Tests => "tests",
            Self::Groups => "groups",
        }
    }

    /// The read model called `name`.
    pub fn parse(name: &str) -> Result<Self, ReadModelError> {
        ALL.into_iter()
            .find(|model| model.name() == name.replace('-', "_"))
            .ok_or_else(|| ReadModelError::UnknownName(name.to_owned()))
    }

    /// The schema queries read from.
    pub fn schema(self) -> String {
        format!("rm_{}", self.name())
    }

    /// The schema a rebuild fills before swapping it in.
    pub fn build_schema(self) -> String {
        format!("rm_{}_build", self.name())
    }

    /// The layout version: bump it when a table or the meaning of a column changes, and every
    /// projector rebuilds this read model before serving it.
    pub fn version(self) -> i32 {
        match self {
            // 2: an index on (status, started_at, run_id) for the gateway's history.
            // 3: the Jenkins build of runs of Jenkins jobs.
            // 4: a member run's group and shard.
            Self::Runs => 4,
            // 2: Jenkins jobs (`jenkins`; `command` may be null).
            // 3: the names runs may set (`env_overridable`), the output limit.
            Self::TestCases => 3,
            // 2: a history in chunks and reports, not a row per result.
            Self::Tests => 2,
            Self::Venvs | Self::Machines | Self::Users | Self::Accounts | Self::Groups => 1,
        }
    }

    /// The model's tables.
    pub fn tables(self) -> &'static [Table] {
        match self {
            Self::Runs => crate::rows::RUNS_TABLES,
            Self::Venvs => crate::rows::VENVS_TABLES,
            Self::Machines => crate::rows::MACHINES_TABLES,
            Self::TestCases => crate::rows::TEST_CASES_TABLES,
            Self::Users => crate::rows::USERS_TABLES,
            Self::Accounts => crate::rows::ACCOUNTS_TABLES,
            Self::Tests => crate::rows::TESTS_TABLES,
            Self::Groups => crate::rows::GROUPS_TABLES,
        }
    }

    /// `CREATE SCHEMA` and `CREATE TABLE` statements for the model in `schema`.
    pub fn create_sql(self, schema: &str) -> Vec<String> {
        let mut statements = vec![format!("CREATE SCHEMA {schema}")];
        statements.extend(self.tables().iter().map(|table| table.create_sql(schema)));
        statements
    }

    /// `CREATE INDEX` statements for the model in `schema`.
    pub fn index_sql(self, schema: &str) -> Vec<String> {
        self.tables()
            .iter()
            .flat_map(|table| table.index_sql(schema))
            .collect()
    }
}

impl fmt::Display for ReadModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Table {
    /// `CREATE TABLE` in `schema` (with its primary key unless that is deferred).
    pub fn create_sql(&self, schema: &str) -> String {
        let mut columns: Vec<String> = self
            .columns
            .iter()
            .map(|(name, sql_type)| format!("{name} {sql_type}"))
            .collect();
        if !self.deferred_key {
            columns.push(format!("PRIMARY KEY ({})", self.key.join(", ")));
        }
        format!(
            "CREATE TABLE {schema}.{} ({})",
            self.name,
            columns.join(", ")
        )
    }

    /// The deferred primary key and the `CREATE INDEX` statements, in `schema`.
    pub fn index_sql(&self, schema: &str) -> Vec<String> {
        let key = self.deferred_key.then(|| {
            format!(
                "ALTER TABLE {schema}.{} ADD PRIMARY KEY ({})",
                self.name,
                self.key.join(", ")
            )
        });
        let indexes = self.indexes.iter().enumerate().map(|(i, columns)| {
            format!(
                "CREATE INDEX {}_{} ON {schema}.{} ({columns})",
                self.name, i, self.name
            )
        });
        key.into_iter().chain(indexes).collect()
    }

    /// `ANALYZE` of the table's columns but its bulk payload (`COMPRESSION lz4`): statistics
    /// of every element of a history's arrays would cost more than the rest of a rebuild.
    pub fn analyze_sql(&self, schema: &str) -> String {
        let columns: Vec<&str> = self
            .columns
            .iter()
            .filter(|(_, sql_type)| !sql_type.contains("COMPRESSION lz4"))
            .map(|(name, _)| *name)
            .collect();
        format!("ANALYZE {schema}.{} ({})", self.name, columns.join(", "))
    }

    /// Upsert of rows given as a JSON array (`$1`) whose objects use the column names.
    pub fn upsert_sql(&self, schema: &str) -> String {
        let name = self.name;
        let insert = format!(
            "INSERT INTO {schema}.{name} SELECT * FROM json_populate_recordset(NULL::{schema}.{name}, $1::json)"
        );
        let rest: Vec<&str> = self
            .columns
            .iter()
            .map(|(column, _)| *column)
            .filter(|column| !self.key.contains(column))
            .collect();
        if rest.is_empty() {
            return format!("{insert} ON CONFLICT DO NOTHING");
        }
        let targets = rest.join(", ");
        let sources: Vec<String> = rest.iter().map(|c| format!("EXCLUDED.{c}")).collect();
        format!(
            "{insert} ON CONFLICT ({}) DO UPDATE SET ({targets}) = ROW({})",
            self.key.join(", "),
            sources.join(", ")
        )
    }

    /// Insert of rows given as a JSON array (`$1`); rows whose key exists are left alone.
    pub fn insert_sql(&self, schema: &str) -> String {
        let name = self.name;
        format!(
            "INSERT INTO {schema}.{name} SELECT * FROM json_populate_recordset(NULL::{schema}.{name}, $1::json) ON CONFLICT DO NOTHING"
        )
    }

    /// Rows whose single-column key is in the array `$1`, each as JSON text.
    pub fn select_by_key_sql(&self, schema: &str) -> String {
        let name = self.name;
        let key = self.key.join(", ");
        format!("SELECT row_to_json(t)::text FROM {schema}.{name} t WHERE {key} = ANY($1)")
    }

    /// Every row in `schema` (its logical rows for a table with [`Table::contents`]) as one
    /// JSON array text, in key order: what "a rebuild reproduces the read model" compares.
    pub fn contents_sql(&self, schema: &str) -> String {
        match self.contents {
            Some(rows) => format!(
                "SELECT coalesce(json_agg(t ORDER BY t), '[]')::text FROM ({}) t",
                rows.replace("{schema}", schema)
            ),
            None => format!(
                "SELECT coalesce(json_agg(t ORDER BY {}), '[]')::text FROM {schema}.{} t",
                self.key.join(", "),
                self.name
            ),
        }
    }

    /// Delete of the rows whose single-column key is in the array `$1`.
    pub fn delete_by_key_sql(&self, schema: &str) -> String {
        let key = self.key.join(", ");
        format!("DELETE FROM {schema}.{} WHERE {key} = ANY($1)", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for model in ALL {
            assert_eq!(ReadModel::parse(model.name()).ok(), Some(model));
        }
        assert_eq!(
            ReadModel::parse("test-cases").ok(),
            Some(ReadModel::TestCases)
        );
        assert!(ReadModel::parse("nope").is_err());
    }

    #[test]
    fn upserts_update_every_column_but_the_key() {
        let table = &ALL[0].tables()[0];
        let sql = table.upsert_sql("rm_runs");
        assert!(sql.contains("ON CONFLICT (run_id) DO UPDATE SET (status"));
        assert!(!sql.contains("EXCLUDED.run_id"));
    }
}
