//! One read model's fold, chosen by [`ReadModel`].

use super::Fact;
use super::lab::{self, InventoryFold};
use super::pool::PoolFold;
use super::runs::RunsFold;
use super::test_history::TestsFold;
use crate::error::ProjectionError;
use runledger_readmodel::ReadModel;
use runledger_readmodel::rows::{AccountRow, GroupRow, MachineRow, TestCaseRow, UserRow};
use sqlx::{Postgres, Transaction};

/// The fold of one read model.
#[derive(Debug)]
pub enum Fold {
    /// `runs`
    Runs(RunsFold),
    /// `venvs`
    Pool(PoolFold),
    /// `machines`
    Machines(InventoryFold<MachineRow>),
    /// `test_cases`
    TestCases(InventoryFold<TestCaseRow>),
    /// `users`
    Users(InventoryFold<UserRow>),
    /// `accounts`
    Accounts(InventoryFold<AccountRow>),
    /// `tests`
    Tests(Box<TestsFold>),
    /// `groups`
    Groups(InventoryFold<GroupRow>),
}

impl Fold {
    /// An empty fold for `model`.
    pub fn new(model: ReadModel) -> Self {
        match model {
            ReadModel::Runs => Self::Runs(RunsFold::default()),
            ReadModel::Venvs => Self::Pool(PoolFold::default()),
            ReadModel::Machines => Self::Machines(lab::machines()),
            ReadModel::TestCases => Self::TestCases(lab::test_cases()),
            ReadModel::Users => Self::Users(lab::users()),
            ReadModel::Accounts => Self::Accounts(super::accounts::accounts()),
            ReadModel::Tests => Self::Tests(Box::default()),
            ReadModel::Groups => Self::Groups(super::groups::groups()),
        }
    }

    /// The run timings folded since the last call (none unless collecting; see
    /// [`RunsFold::collect_timings`]).
    pub fn take_run_timings(&mut self) -> Vec<super::runs::RunTiming> {
        match self {
            Self::Runs(fold) => fold.take_timings(),
            _ => Vec::new(),
        }
    }

    /// Loads what the fold keeps in memory for the whole schema (after a clear).
    pub async fn load_state(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        match self {
            Self::Runs(fold) => fold.load_state(tx, schema).await,
            Self::Tests(fold) => fold.load_state(tx, schema).await,
            _ => Ok(()),
        }
    }

    /// Loads the rows `facts` touch.
    pub async fn prepare(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
        facts: &[Fact],
    ) -> Result<(), ProjectionError> {
        match self {
            Self::Runs(fold) => fold.prepare(tx, schema, facts).await,
            Self::Pool(fold) => fold.prepare(tx, schema, facts).await,
            Self::Machines(fold) => fold.prepare(tx, schema, facts).await,
            Self::TestCases(fold) => fold.prepare(tx, schema, facts).await,
            Self::Users(fold) => fold.prepare(tx, schema, facts).await,
            Self::Accounts(fold) => fold.prepare(tx, schema, facts).await,
            Self::Tests(fold) => fold.prepare(tx, schema, facts).await,
            Self::Groups(fold) => fold.prepare(tx, schema, facts).await,
        }
    }

    /// Folds one event.
    pub fn apply(&mut self, fact: &Fact) {
        match self {
            Self::Runs(fold) => fold.apply(fact),
            Self::Pool(fold) => fold.apply(fact),
            Self::Machines(fold) => fold.apply(fact),
            Self::TestCases(fold) => fold.apply(fact),
            Self::Users(fold) => fold.apply(fact),
            Self::Accounts(fold) => fold.apply(fact),
            Self::Tests(fold) => fold.apply(fact),
            Self::Groups(fold) => fold.apply(fact),
        }
    }

    /// Writes the changes folded since the last commit.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        match self {
            Self::Runs(fold) => fold.flush(tx, schema).await,
            Self::Pool(fold) => fold.flush(tx, schema).await,
            Self::Machines(fold) => fold.flush(tx, schema).await,
            Self::TestCases(fold) => fold.flush(tx, schema).await,
            Self::Users(fold) => fold.flush(tx, schema).await,
            Self::Accounts(fold) => fold.flush(tx, schema).await,
            Self::Tests(fold) => fold.flush(tx, schema).await,
            Self::Groups(fold) => fold.flush(tx, schema).await,
        }
    }

    /// Rows the fold has ready that a rebuild may write on a connection of its own, while it
    /// folds on (after each page) or flushes the rest (`all`, at the end of its batch): rows
    /// only ever inserted, never looked up.
    pub fn take_ahead(&mut self, all: bool) -> Vec<crate::binary_copy::BulkRows> {
        match self {
            Self::Tests(fold) => fold.take_ahead(all),
            _ => Vec::new(),
        }
    }

    /// After the transaction committed.
    pub fn committed(&mut self) {
        match self {
            Self::Runs(fold) => fold.committed(),
            Self::Pool(fold) => fold.committed(),
            Self::Machines(fold) => fold.committed(),
            Self::TestCases(fold) => fold.committed(),
            Self::Users(fold) => fold.committed(),
            Self::Accounts(fold) => fold.committed(),
            Self::Tests(fold) => fold.committed(),
            Self::Groups(fold) => fold.committed(),
        }
    }

    /// Forgets everything cached: the next batch reloads.
    pub fn clear(&mut self) {
        match self {
            Self::Runs(fold) => fold.clear(),
            Self::Pool(fold) => fold.clear(),
            Self::Machines(fold) => fold.clear(),
            Self::TestCases(fold) => fold.clear(),
            Self::Users(fold) => fold.clear(),
            Self::Accounts(fold) => fold.clear(),
            Self::Tests(fold) => fold.clear(),
            Self::Groups(fold) => fold.clear(),
        }
    }
}
