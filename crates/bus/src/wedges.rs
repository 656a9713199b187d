//! Why components of this process cannot go on: a board the components write and `/readyz`
//! reads, so a wedged process says it is not ready, and why.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The components that are wedged, each with its reason. Cheap to clone; clones share the board.
#[derive(Debug, Clone, Default)]
pub struct Wedges(Arc<Mutex<BTreeMap<String, String>>>);

impl Wedges {
    /// Records that `component` is wedged, and why (replacing an earlier reason).
    pub fn set(&self, component: &str, reason: impl Into<String>) {
        let reason = reason.into();
        let mut board = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if board.get(component) != Some(&reason) {
            tracing::error!(component, %reason, "wedged");
            board.insert(component.to_owned(), reason);
        }
    }

    /// Records that `component` goes on again.
    pub fn clear(&self, component: &str) {
        let mut board = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if board.remove(component).is_some() {
            tracing::info!(component, "no longer wedged");
        }
    }

    /// Every wedged component and its reason, by component name.
    pub fn all(&self) -> Vec<(String, String)> {
        let board = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        board
            .iter()
            .map(|(component, reason)| (component.clone(), reason.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_board() {
        let wedges = Wedges::default();
        let seen = wedges.clone();
        wedges.set("executor", "waiting");
        assert_eq!(seen.all(), [("executor".into(), "waiting".into())]);
        seen.clear("executor");
        assert!(wedges.all().is_empty());
    }
}
