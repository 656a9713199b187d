//! The gateway's own tables, in the `gateway` schema: issued tokens (`gateway.tokens`), failed
//! logins (`gateway.login_attempts`), and the Postgres notifications that end tokens on every
//! gateway process at once. Unlike the read models they are written by the gateway, not the
//! projector; they live here so that every statement the gateway runs is a typed function of
//! this crate.

mod attempts;
mod revocations;
mod tokens;

pub use attempts::{LoginLimits, RETENTION, attempt_succeeded, prune_attempts, reserve_attempt};
pub use revocations::{REVOKED_CHANNEL, Revocation, RevocationListener, USER_SESSIONS_CHANNEL};
pub use tokens::{NewToken, ValidToken, insert_token, revoke_token, valid_token};
