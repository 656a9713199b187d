//! One connection per machine, shared by every channel that machine needs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{SshConnection, SshError, SshOptions, SshTarget, connect};

/// The pool's key: one connection per machine address and user.
type Key = (String, u16, String);
/// One machine's slot; its async lock makes concurrent callers share one connect.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<SshConnection>>>>;

/// A pool of SSH connections, one per `(host, port, username)`, reconnecting when one breaks.
///
/// Channels are multiplexed: any number of execs and uploads share a machine's connection.
pub struct SshPool {
    options: SshOptions,
    slots: Mutex<HashMap<Key, Slot>>,
    opened: AtomicU64,
}

impl SshPool {
    /// An empty pool whose connections use `options` (set `keepalive_interval` to notice dead
    /// connections while idle).
    pub fn new(options: SshOptions) -> Self {
        SshPool {
            options,
            slots: Mutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
        }
    }

    /// The live connection to `target`'s machine, connecting (or reconnecting) when there is none.
    ///
    /// A cached connection is reused only if it is open and, when `target` pins a host key, was
    /// made with that key. Whether the key was trusted on first use shows in
    /// [`SshConnection::host_key_fingerprint`].
    pub async fn get(&self, target: &SshTarget) -> Result<Arc<SshConnection>, SshError> {
        let slot = self.slot(target);
        let mut cached = slot.lock().await;
        if let Some(connection) = cached.as_ref().filter(|c| usable(c, target)) {
            return Ok(connection.clone());
        }
        if cached.is_some() {
            tracing::info!(addr = %target.addr(), "ssh connection lost or stale; reconnecting");
        }
        let (connection, _) = connect(target, &self.options).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(connection);
        *cached = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets `target`'s connection (after an error that leaves it suspect); the next
    /// [`get`](Self::get) connects afresh. Channels already open on it go on.
    pub async fn evict(&self, target: &SshTarget) {
        self.slot(target).lock().await.take();
    }

    /// How many connections this pool has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn slot(&self, target: &SshTarget) -> Slot {
        let key = (target.host.clone(), target.port, target.username.clone());
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key).or_default().clone()
    }
}

fn usable(connection: &SshConnection, target: &SshTarget) -> bool {
    let same_key = target
        .pinned_host_key
        .as_ref()
        .is_none_or(|pin| pin == connection.host_key_fingerprint());
    !connection.is_closed() && same_key
}
