//! Pooled connections per machine: many channels on each, and as many connections as the
//! concurrent work needs.
//!
//! OpenSSH refuses more than `MaxSessions` (default 10) channels at once on one connection, and
//! a run may hold two at a time (its command, and the `kill` of a timeout or cancel, or an
//! upload). So each connection serves at most [`SshOptions::users_per_connection`] callers at
//! once (default 4: eight channels and a spare); a caller beyond that gets another connection to
//! the same machine, up to [`SshOptions::max_connections_per_machine`], and past that waits for
//! a slot.
//!
//! Only authenticated connections enter the pool, and [`connect`] authenticates only with a
//! pinned key or after its [`ApproveHostKey`] pinned a first-seen one: a pooled connection never
//! needs approving again.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{ApproveHostKey, SshAuth, SshConnection, SshError, SshOptions, SshTarget, connect};

/// The pool's key: one set of connections per machine address, user and credential. The
/// credential is part of it so that a machine registered with another's address and user but
/// without its password or key never rides on that machine's authenticated connections.
type Key = (String, u16, String, SshAuth);
/// One machine's connections; its async lock makes concurrent callers share one connect.
type Slot = Arc<tokio::sync::Mutex<Vec<Pooled>>>;

#[derive(Clone)]
struct Pooled {
    connection: Arc<SshConnection>,
    users: Arc<Semaphore>,
}

/// A connection from the pool, counted against its per-connection limit until dropped.
pub struct PooledConnection {
    connection: Arc<SshConnection>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl PooledConnection {
    /// A connection outside any pool (tests, one-off tools): no limit applies.
    pub fn unpooled(connection: Arc<SshConnection>) -> Self {
        Self {
            connection,
            _slot: None,
        }
    }
}

impl Deref for PooledConnection {
    type Target = SshConnection;

    fn deref(&self) -> &SshConnection {
        &self.connection
    }
}

/// A pool of SSH connections per `(host, port, username, credential)`, reconnecting when one
/// breaks.
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

    /// A live connection to `target`'s machine with a free slot: an open one when it has room,
    /// else a new one (up to the per-machine bound), else the first to free a slot.
    ///
    /// A cached connection is reused only if it is open and, when `target` pins a host key, was
    /// made with that key. A new connection to a `target` without a pin authenticates only after
    /// `approve` pinned the key it presented ([`connect`]).
    pub async fn get(
        &self,
        target: &SshTarget,
        approve: &impl ApproveHostKey,
    ) -> Result<PooledConnection, SshError> {
        let slot = self.slot(target);
        let mut pooled = slot.lock().await;
        let before = pooled.len();
        pooled.retain(|p| usable(&p.connection, target));
        if pooled.len() < before {
            tracing::info!(addr = %target.addr(), "ssh connection lost or stale; reconnecting");
        }
        for candidate in pooled.iter() {
            if let Ok(permit) = Arc::clone(&candidate.users).try_acquire_owned() {
                return Ok(lease(candidate, permit));
            }
        }
        if pooled.len() < self.options.max_connections_per_machine.max(1) {
            let started = std::time::Instant::now();
            let (connection, _) = match connect(target, &self.options, approve).await {
                Ok(connected) => connected,
                Err(err) => {
                    let reason = format!("{:?}", err.kind()).to_lowercase();
                    metrics::counter!("runledger_ssh_connect_failures_total", "reason" => reason)
                        .increment(1);
                    return Err(err);
                }
            };
            metrics::histogram!("runledger_ssh_connect_seconds")
                .record(started.elapsed().as_secs_f64());
            self.opened.fetch_add(1, Ordering::Relaxed);
            let fresh = Pooled {
                connection: Arc::new(connection),
                users: Arc::new(Semaphore::new(self.options.users_per_connection.max(1))),
            };
            pooled.push(fresh.clone());
            return match Arc::clone(&fresh.users).try_acquire_owned() {
                Ok(permit) => Ok(lease(&fresh, permit)),
                // A fresh semaphore has room; without a permit the caller just goes unlimited.
                Err(_) => Ok(PooledConnection::unpooled(fresh.connection)),
            };
        }
        let busiest = pooled[0].clone();
        drop(pooled);
        match busiest.users.clone().acquire_owned().await {
            Ok(permit) => Ok(lease(&busiest, permit)),
            Err(_) => Ok(PooledConnection::unpooled(busiest.connection)),
        }
    }

    /// Forgets `target`'s connections (after an error that leaves them suspect); the next
    /// [`get`](Self::get) connects afresh. Channels already open on them go on.
    pub async fn evict(&self, target: &SshTarget) {
        self.slot(target).lock().await.clear();
    }

    /// How many connections this pool has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn slot(&self, target: &SshTarget) -> Slot {
        let key = (
            target.host.clone(),
            target.port,
            target.username.clone(),
            target.auth.clone(),
        );
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key).or_default().clone()
    }
}

fn lease(pooled: &Pooled, permit: OwnedSemaphorePermit) -> PooledConnection {
    PooledConnection {
        connection: Arc::clone(&pooled.connection),
        _slot: Some(permit),
    }
}

fn usable(connection: &SshConnection, target: &SshTarget) -> bool {
    let same_key = target
        .pinned_host_key
        .as_ref()
        .is_none_or(|pin| pin == connection.host_key_fingerprint());
    !connection.is_closed() && same_key
}
