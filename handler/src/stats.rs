//! Counters of what the handler did, readable while it runs (for tests now, metrics later).

use std::sync::atomic::{AtomicU64, Ordering};

/// What one handler has done since it started.
#[derive(Debug, Default)]
pub struct HandlerStats {
    groups: AtomicU64,
    commands: AtomicU64,
    conflicts: AtomicU64,
}

impl HandlerStats {
    /// Groups of commands committed.
    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// Commands answered from a committed group (accepted or rejected).
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Appends that lost an optimistic-concurrency race and were decided again.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    pub(crate) fn committed(&self, commands: usize) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(commands as u64, Ordering::Relaxed);
    }

    pub(crate) fn conflicted(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }
}
