//! Secrets at rest: machine credentials sealed with AES-256-GCM under a named key, user passwords
//! hashed with argon2.
//!
//! The key comes from `RUNLEDGER_SECRET_KEY` (base64 of 32 bytes). Each sealed value names its
//! key (`key_id`, a fingerprint of the key), so a [`Keyring`] can hold older keys to open values
//! sealed before a rotation while sealing new ones with the current key.
//! Depends on runledger-types and RustCrypto crates only; no I/O.
#![deny(missing_docs)]

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use runledger_types::command::Protector;
use runledger_types::{PasswordHash, SealedSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;

/// The AEAD named in every [`SealedSecret`] this crate writes.
pub const ALGORITHM: &str = "aes-256-gcm";

/// Why a secret could not be sealed, opened or hashed.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The configured key is not base64 of exactly 32 bytes.
    #[error("secret key must be base64 of exactly 32 bytes")]
    BadKey,
    /// No key in the keyring has this id.
    #[error("no key with id {0} in the keyring")]
    UnknownKey(String),
    /// Wrong algorithm, corrupted or tampered ciphertext, or wrong key.
    #[error("sealed secret cannot be opened (corrupted, or sealed under another key)")]
    Unsealable,
    /// argon2 refused the password.
    #[error("password hashing failed: {0}")]
    Hash(#[source] argon2::password_hash::Error),
}

/// One 256-bit key and its id. `Debug` never prints the key.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Aes256Gcm,
    id: String,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// Parses `RUNLEDGER_SECRET_KEY`: base64 of 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, SecretsError> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| SecretsError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    /// Builds a key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretsError> {
        let key = Key::<Aes256Gcm>::try_from(bytes).map_err(|_| SecretsError::BadKey)?;
        let digest = Sha256::new()
            .chain_update(b"runledger-key-id:")
            .chain_update(bytes)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            cipher: Aes256Gcm::new(&key),
            id,
        })
    }

    /// The fixed, public key `serve --dev` uses: anyone can open what it seals. Never for real labs.
    pub fn insecure_dev_key() -> Self {
        let bytes: Vec<u8> = b"runledger-dev-key-not-for-real-use!"[..32].to_vec();
        Self::from_bytes(&bytes).unwrap_or_else(|_| unreachable!("32 bytes make a key"))
    }

    /// The key's id, as written into every value it seals.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Seals with the current key; opens with any key it holds (for rotation).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring that seals with `current` and can also open values sealed under `previous`.
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        Self { current, previous }
    }

    /// Encrypts `secret` under the current key, bound to the key id.
    pub fn seal(&self, secret: &SecretString) -> Result<SealedSecret, SecretsError> {
        let nonce = Nonce::generate();
        let payload = Payload {
            msg: secret.expose().as_bytes(),
            aad: self.current.id.as_bytes(),
        };
        let ciphertext = self
            .current
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| SecretsError::Unsealable)?;
        Ok(SealedSecret {
            key_id: self.current.id.clone(),
            alg: ALGORITHM.to_owned(),
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        })
    }

    /// Decrypts a sealed value with the key it names.
    pub fn open(&self, sealed: &SealedSecret) -> Result<SecretString, SecretsError> {
        if sealed.alg != ALGORITHM {
            return Err(SecretsError::Unsealable);
        }
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == sealed.key_id)
            .ok_or_else(|| SecretsError::UnknownKey(sealed.key_id.clone()))?;
        let nonce_bytes = BASE64
            .decode(&sealed.nonce)
            .map_err(|_| SecretsError::Unsealable)?;
        let nonce =
            Nonce::try_from(nonce_bytes.as_slice()).map_err(|_| SecretsError::Unsealable)?;
        let ciphertext = BASE64
            .decode(&sealed.ciphertext)
            .map_err(|_| SecretsError::Unsealable)?;
        let payload = Payload {
            msg: &ciphertext,
            aad: key.id.as_bytes(),
        };
        let clear = key
            .cipher
            .decrypt(&nonce, payload)
            .map_err(|_| SecretsError::Unsealable)?;
        String::from_utf8(clear)
            .map(SecretString::new)
            .map_err(|_| SecretsError::Unsealable)
    }
}

/// Hashes a user's password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &SecretString) -> Result<PasswordHash, SecretsError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| PasswordHash(hash.to_string()))
        .map_err(SecretsError::Hash)
}

/// True when `password` matches `hash`.
pub fn verify_password(password: &SecretString, hash: &PasswordHash) -> bool {
    Argon2::default()
        .verify_password(password.expose().as_bytes(), hash.0.as_str())
        .is_ok()
}

impl Protector for Keyring {
    type Error = SecretsError;

    fn seal(&self, secret: &SecretString) -> Result<SealedSecret, SecretsError> {
        Keyring::seal(self, secret)
    }

    fn hash_password(&self, password: &SecretString) -> Result<PasswordHash, SecretsError> {
        hash_password(password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).expect("32 bytes")
    }

    #[test]
    fn sealed_secrets_open_and_never_contain_the_clear_text() {
        let ring = Keyring::new(key(1), vec![]);
        let secret = SecretString::new("correct horse battery staple");
        let sealed = ring.seal(&secret).expect("seals");
        let json = format!("{sealed:?}");
        assert!(!json.contains("horse"));
        assert_eq!(sealed.key_id, key(1).id());
        assert_eq!(ring.open(&sealed).expect("opens"), secret);
        assert_ne!(ring.seal(&secret).expect("seals").nonce, sealed.nonce);
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::new(key(1), vec![]);
        let sealed = old.seal(&SecretString::new("pw")).expect("seals");
        let rotated = Keyring::new(key(2), vec![key(1)]);
        assert_eq!(rotated.open(&sealed).expect("opens").expose(), "pw");
        let fresh = Keyring::new(key(2), vec![]);
        assert!(matches!(
            fresh.open(&sealed),
            Err(SecretsError::UnknownKey(_))
        ));
    }

    #[test]
    fn tampering_is_detected() {
        let ring = Keyring::new(key(1), vec![]);
        let mut sealed = ring.seal(&SecretString::new("pw")).expect("seals");
        sealed.ciphertext = BASE64.encode(b"garbage garbage garbage");
        assert!(matches!(ring.open(&sealed), Err(SecretsError::Unsealable)));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SecretKey::from_base64("not base64!").is_err());
        assert!(SecretKey::from_base64(&BASE64.encode([0u8; 16])).is_err());
        assert!(SecretKey::from_base64(&BASE64.encode([7u8; 32])).is_ok());
        assert!(!format!("{:?}", key(9)).contains("0909"));
    }

    #[test]
    fn passwords_hash_and_verify() {
        let password = SecretString::new("s3cret-password");
        let hash = hash_password(&password).expect("hashes");
        assert!(hash.0.starts_with("$argon2id$"));
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(
            &SecretString::new("wrong-password"),
            &hash
        ));
    }
}
