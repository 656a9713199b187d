//! How each read model folds events into rows. Every fold is synchronous and pure over its row
//! caches: the engine loads the rows a batch touches, folds, then writes the changes.

pub mod accounts;
pub mod groups;
pub mod lab;
pub mod pool;
pub mod runs;
pub mod select;
pub mod test_history;

use chrono::{DateTime, Utc};
use runledger_types::Event;
use serde::Serialize;
use std::collections::HashSet;
use std::hash::Hash;

/// A decoded event with what the read models take from its envelope.
#[derive(Debug, Clone)]
pub struct Fact {
    /// Its log position.
    pub position: i64,
    /// When it was committed: the only clock read models use.
    pub recorded_at: DateTime<Utc>,
    /// Who asked.
    pub actor: String,
    /// The event.
    pub event: Event,
}

/// The keys a batch must load: every key an event of `facts` touches, except those whose first
/// event in the batch creates the row (`creates`), since nothing can exist under them yet.
pub(crate) fn keys_to_load<K: Hash + Eq + Clone>(
    facts: &[Fact],
    touched: impl Fn(&Event) -> Option<(K, bool)>,
) -> Vec<K> {
    let mut seen = HashSet::new();
    let mut load = Vec::new();
    for (key, creates) in facts.iter().filter_map(|fact| touched(&fact.event)) {
        if seen.insert(key.clone()) && !creates {
            load.push(key);
        }
    }
    load
}

/// The wire name of a unit-like enum value (`linux`, `admin`, ...).
pub(crate) fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Any serialisable value as JSON (`null` if it cannot be).
pub(crate) fn json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
