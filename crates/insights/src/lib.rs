//! Insight across runs, as pure functions of test results: what a test is ([`identity`]), how
//! flaky it is and why ([`flakiness`]), how long it takes ([`durations`]), and what changed
//! between two runs ([`compare`]).
//!
//! Everything here is a function of results the log holds, so a read model built with it is
//! rebuilt to the same answers by replaying the log. No I/O, no clock.
#![deny(missing_docs)]

pub mod compare;
pub mod durations;
pub mod flakiness;
pub mod identity;

pub use compare::{Comparison, DurationChange, compare};
pub use durations::percentile;
pub use flakiness::{Flakiness, Flip, Observed, assess};
pub use identity::{TestId, TestKey, test_id};
