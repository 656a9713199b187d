//! The read side of the audit history: what the event log says happened, for people and tools.
//!
//! - [`travel`]: time travel. Folds the log up to a position or a time with the domain's own
//!   [`evolve`](runledger_domain::evolve) (every run kept, none forgotten), into the same
//!   [`Lab`](runledger_domain::Lab) the handler decides on.
//! - [`view`] and [`state`]: serialisable views of that state, named as the contract names
//!   things (the domain's state stays free of serde), and the report `runledger audit state`
//!   prints.
//! - [`listing`]: the events matching a filter, a page at a time, and when a follower has caught
//!   up.
//! - [`verify`]: the hash chain check's report as JSON.
//!
//! The `runledger` binary only parses arguments and prints; everything here is tested on its
//! own. Depends on `runledger-domain` (the fold), `runledger-store` (the log) and
//! `runledger-types`; no async runtime of its own, no NATS.
#![deny(missing_docs)]

pub mod listing;
pub mod state;
pub mod travel;
pub mod verify;
pub mod view;

pub use listing::{Listing, Next, Page};
pub use state::{StateReport, Subject};
pub use travel::{Point, Snapshot, lab_at};
pub use verify::VerifyView;
pub use view::{AsOf, PoolView, RunView, VenvView};

use runledger_store::StoreError;
use runledger_types::envelope::UpcastError;

/// Events read per query: memory stays flat however long the log is.
const PAGE: i64 = 1000;

/// Why the audit history could not be read. The messages are the underlying errors' own: the
/// CLI prints them as they were before this crate existed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event log could not be queried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event in the log cannot be read by this version.
    #[error(transparent)]
    Decode(#[from] UpcastError),
}
