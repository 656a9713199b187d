//! Secret values as they travel through runledger.
//!
//! A [`SecretString`] is what a caller sends (a machine password, a private key, a user's
//! password): it deserialises, but never prints and never serialises. Before anything is
//! appended it becomes a [`SealedSecret`] (encrypted) or a [`PasswordHash`] (argon2).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Clear-text secret from a command payload. `Debug` prints `[redacted]`; there is no `Display`
/// and no `Serialize`, and a payload that gives it as anything but a string is refused without
/// quoting the value, so it cannot leak into an event, a log line or an answer by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts only strings, and never repeats what it was given in an error.
struct SecretVisitor;

/// Longest secret, in characters: a password or an OpenSSH private key fits many times over.
pub const MAX_SECRET_CHARS: usize = 65_536;

impl SecretVisitor {
    fn refuse<E: serde::de::Error>() -> E {
        E::custom("a secret must be a JSON string")
    }

    /// Refuses a secret over [`MAX_SECRET_CHARS`] (saying how long it may be, not what it is).
    fn bounded<E: serde::de::Error>(value: &str) -> Result<(), E> {
        if value.chars().count() > MAX_SECRET_CHARS {
            return Err(E::custom(format!(
                "a secret must be at most {MAX_SECRET_CHARS} characters"
            )));
        }
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = SecretString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<SecretString, E> {
        Self::bounded(value)?;
        Ok(SecretString(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<SecretString, E> {
        Self::bounded(&value)?;
        Ok(SecretString(value))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretString, E> {
        Err(Self::refuse())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretString, E> {
        Err(Self::refuse())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretString, E> {
        Err(Self::refuse())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretString, E> {
        Err(Self::refuse())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<SecretString, A::Error> {
        Err(Self::refuse())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<SecretString, A::Error> {
        Err(Self::refuse())
    }
}

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

/// A clear-text secret in a command being sent: the one form that serialises, because the
/// command's wire body must carry it to the handler, which seals or hashes it before anything is
/// appended. Only the senders' command types ([`crate::command::CommandPayload`]) hold it; like
/// [`SecretString`] it never prints.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct OutgoingSecret(SecretString);

impl OutgoingSecret {
    /// Wraps a clear-text secret to send.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::new(secret))
    }
}

impl From<SecretString> for OutgoingSecret {
    fn from(secret: SecretString) -> Self {
        Self(secret)
    }
}

impl Serialize for OutgoingSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose())
    }
}

impl fmt::Debug for OutgoingSecret {
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
    fn a_mistyped_secret_is_refused_without_being_quoted() {
        for raw in [
            "12345678",
            "true",
            "[\"hunter2\"]",
            "{\"pw\":\"hunter2\"}",
            "1.5",
        ] {
            let err = serde_json::from_str::<SecretString>(raw)
                .expect_err(raw)
                .to_string();
            assert!(
                !err.contains("hunter2") && !err.contains("12345678"),
                "{err}"
            );
        }
        let ok: SecretString = serde_json::from_str("\"hunter2\"").expect("a string");
        assert_eq!(ok.expose(), "hunter2");
    }

    #[test]
    fn secrets_never_print() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert!(!format!("{:?}", PasswordHash("$argon2id$x".into())).contains("$argon2id$x"));
        assert_eq!(
            format!("{:?}", OutgoingSecret::new("hunter2")),
            "[redacted]"
        );
    }

    #[test]
    fn an_outgoing_secret_carries_its_clear_text_on_the_wire_only() {
        let secret: OutgoingSecret = serde_json::from_str("\"hunter2\"").expect("a string");
        assert_eq!(
            serde_json::to_string(&secret).ok().as_deref(),
            Some("\"hunter2\"")
        );
        assert!(serde_json::from_str::<OutgoingSecret>("12345678").is_err());
    }
}
