//! A synthetic but realistic event log for the `replay` benchmark.
//!
//! [`Sim`] plays a lab of machines, venvs and test cases through many runs (requested, queued
//! when their machine is full, assigned, started, streaming output, sometimes cancelled,
//! finished, their venv released and handed to the next queued run), with rejected commands and
//! executor heartbeats in between. Every event is a real [`runledger_types::Event`], so it
//! decodes exactly as the projector expects. [`LogWriter`] numbers the events (positions from 1,
//! stream versions from 1 per stream, `recorded_at` 2 ms apart) and encodes them as rows of
//! `COPY events FROM STDIN` in text format.

pub mod content;
mod lab;
mod load;
mod rng;
mod sim;
pub mod test_results;
mod writer;

pub use lab::SimSettings;
pub use load::{Loaded, load};
pub use rng::Rng;
pub use sim::Sim;
pub use writer::{COPY_EVENTS, Command, LogWriter};
