//! Secret values as they travel through runledger.
//!
//! A [`SecretString`] is what a caller sends (a machine password, a private key, a user's
//! password): it deserialises, but never prints and never serialises. Before anything is
//! appended it becomes a [`SealedSecret`] (encrypted) or a [`PasswordHash`] (argon2).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Clear-text secret from a command payload. `Debug` prints `[redacted]`; there is no `Display`
/// and no `Serialize`, so it cannot leak into an event, a log line or an answer by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a clear-text secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The clear text, for the one place that encrypts or hashes it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A secret encrypted with an AEAD under the key named by `key_id`; safe to store and publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Which key sealed it, so keys can be rotated.
    pub key_id: String,
    /// The AEAD algorithm, e.g. `aes-256-gcm`.
    pub alg: String,
    /// Base64 nonce.
    pub nonce: String,
    /// Base64 ciphertext with its tag.
    pub ciphertext: String,
}

/// An argon2 password hash in PHC string form.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([argon2])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert!(!format!("{:?}", PasswordHash("$argon2id$x".into())).contains("$argon2id$x"));
    }
}
