//! Password checks: argon2 behind a semaphore, and as costly for an unknown user as for a known
//! one. argon2 is CPU- and memory-hard on purpose, so an unbounded number of concurrent checks
//! would let a burst of logins starve the gateway; at most [`PasswordChecker::concurrency`]
//! run at once and the others wait their turn. A login for a username with no account is checked
//! against a dummy hash made with the same parameters at start-up, so its answer takes as long
//! as a wrong password's and does not tell which usernames exist.

use crate::error::ApiError;
use runledger_secrets::{SecretsError, hash_password, verify_password};
use runledger_types::{PasswordHash, SecretString};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

/// Why the password checks could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PasswordsError {
    /// argon2 refused to hash the dummy password.
    #[error(transparent)]
    Hash(#[from] SecretsError),
    /// The blocking task hashing it did not finish.
    #[error("the task hashing the dummy password failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs argon2 verifications, a bounded number at a time.
#[derive(Debug)]
pub struct PasswordChecker {
    permits: Semaphore,
    concurrency: usize,
    dummy: PasswordHash,
    runs: AtomicU64,
}

impl PasswordChecker {
    /// A checker running at most `concurrency` (at least 1) verifications at once; hashes the
    /// dummy password (one argon2 run, off the async threads).
    pub async fn new(concurrency: usize) -> Result<Self, PasswordsError> {
        let dummy = tokio::task::spawn_blocking(|| {
            use rand::RngCore as _;
            let mut random = [0u8; 32];
            rand::rng().fill_bytes(&mut random);
            let random: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
            hash_password(&SecretString::new(random))
        })
        .await??;
        let concurrency = concurrency.max(1);
        Ok(Self {
            permits: Semaphore::new(concurrency),
            concurrency,
            dummy,
            runs: AtomicU64::new(0),
        })
    }

    /// One verification per core: more would only queue inside the CPU.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    }

    /// How many verifications may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// True when `password` matches `hash`; with no hash (no such user) the dummy hash is
    /// checked and the answer is false.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("runledger_gateway_password_checks_total").increment(1);
        let matched = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(ApiError::internal)?;
        Ok(matched && known)
    }

    /// Verifications run so far (each one argon2 run), for tests and diagnostics.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}
