//! The rows of every read-model table. Field names are column names: the projector writes rows
//! as JSON through `json_populate_recordset`, and reads them back with `row_to_json`.

mod accounts;
mod groups;
mod lab;
mod pool;
mod runs;
mod test_history;

pub use crate::decode::{group_status, run_status};
pub use accounts::{ACCOUNTS_TABLES, AccountRow};
pub use groups::{GROUPS_TABLES, GroupRow};
pub use lab::{MACHINES_TABLES, MachineRow, TEST_CASES_TABLES, TestCaseRow, USERS_TABLES, UserRow};
pub use pool::{QueueRow, VENVS_TABLES, VenvRow, VenvStatus};
pub use runs::{NameKind, NameRow, OutputRow, RUNS_TABLES, RunRow};
pub use test_history::{
    CHUNK, DURATION_WINDOW, FLAKY_WINDOW, HistoryChunk, QuarantineRow, RECENT, RecentResult,
    ReportRow, TESTS_TABLES, TestMachineRow, TestRow, TestRunRow, outcome_name, outcome_named,
};
