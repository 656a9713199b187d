//! Payloads that manage accounts after registration: disabling a user, changing a password and
//! revoking a user's tokens. Tokens live beside the log (the gateway's session table); these
//! commands only record the facts every gateway reads to refuse them.

use super::InvalidPayload;
use crate::secret::SecretString;
use crate::values::Username;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Passwords shorter than this are refused: they fall to a dictionary in minutes.
const MIN_PASSWORD_CHARS: usize = 8;
/// Passwords longer than this are refused: argon2's cost grows with the input.
const MAX_PASSWORD_CHARS: usize = 1024;

/// The OpenAPI schema of a user's clear-text password: its length rule, which the handler
/// checks.
pub fn user_password_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
            utoipa::openapi::schema::KnownFormat::Password,
        )))
        .description(Some(
            "A user's password in clear text; the handler hashes it.",
        ))
        .min_length(Some(MIN_PASSWORD_CHARS))
        .max_length(Some(MAX_PASSWORD_CHARS))
        .build()
}

/// `invalid_payload` unless `password` has an acceptable length.
pub(super) fn check_password(password: &SecretString) -> Result<(), InvalidPayload> {
    let length = password.expose().chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(InvalidPayload(format!(
            "payload.password: password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// `disable_user` (admins): the user can no longer log in and every token of theirs stops
/// working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableUser {
    /// The user to disable.
    pub username: Username,
}

/// `change_password` (the user themselves, or an admin for anyone): `P` is the clear password on
/// the way in, its argon2 hash once protected. Every token of the user is revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword<P> {
    /// Whose password.
    pub username: Username,
    /// Clear text on the way in, argon2 hash once protected.
    #[schema(schema_with = super::user_password_schema)]
    pub password: P,
}

impl ChangePassword<SecretString> {
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        check_password(&self.password)?;
        Ok(self)
    }
}

/// `revoke_tokens` (admins): every token of the user issued so far stops working; the user may
/// log in again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokens {
    /// Whose tokens.
    pub username: Username,
}

#[cfg(test)]
mod tests {
    use crate::command::{CommandType, Incoming, parse_payload};

    #[test]
    fn change_password_arrives_with_its_clear_password_and_a_length_rule() {
        let parsed = parse_payload(
            CommandType::ChangePassword,
            r#"{"username":"mia","password":"a long new password"}"#,
        );
        assert!(matches!(parsed, Ok(Incoming::ChangePassword(_))));
        let short = parse_payload(
            CommandType::ChangePassword,
            r#"{"username":"mia","password":"short"}"#,
        );
        let message = short.map(|_| ()).unwrap_err().0;
        assert!(message.contains("payload.password"), "{message}");
        assert!(!message.contains("short"), "{message}");
    }

    #[test]
    fn disable_user_and_revoke_tokens_name_a_valid_username() {
        for kind in [CommandType::DisableUser, CommandType::RevokeTokens] {
            assert!(parse_payload(kind, r#"{"username":"mia"}"#).is_ok());
            assert!(parse_payload(kind, r#"{"username":"executor:x"}"#).is_err());
            assert!(parse_payload(kind, r#"{"username":"mia","extra":1}"#).is_err());
        }
    }
}
