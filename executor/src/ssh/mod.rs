//! The executor's SSH client, built on russh: authenticated connections with pinned host keys,
//! or first-seen keys pinned before any credential is sent ([`connect`], [`ApproveHostKey`]), streaming command execution
//! ([`SshConnection::exec`]), SFTP uploads ([`SshConnection::upload`]) and a per-machine
//! connection pool ([`SshPool`]) that runs many channels over each connection.

mod connect;
mod exec;
mod pool;
mod sftp;

pub use connect::{AcceptFirstKey, ApprovalError, ApproveHostKey, SshConnection, connect};
pub use exec::{Output, RemoteExit};
pub use pool::{PooledConnection, SshPool};

use std::fmt;
use std::time::Duration;

/// Where to connect and how to prove who we are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// Host name or IP address.
    pub host: String,
    /// TCP port (22 usually).
    pub port: u16,
    /// The remote user to log in as.
    pub username: String,
    /// The credential; its `Debug` output never shows the secret.
    pub auth: SshAuth,
    /// The expected host key fingerprint, `SHA256:...`; `None` trusts the first key seen.
    pub pinned_host_key: Option<String>,
}

impl SshTarget {
    /// `host:port`, as used in errors and logs.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A credential for SSH user authentication.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SshAuth {
    /// Password authentication.
    Password(String),
    /// Public-key authentication with an unencrypted private key in OpenSSH PEM form
    /// (`-----BEGIN OPENSSH PRIVATE KEY-----`); ed25519, ECDSA and RSA keys work.
    PrivateKey(String),
}

impl fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshAuth::Password(_) => f.write_str("Password(<redacted>)"),
            SshAuth::PrivateKey(_) => f.write_str("PrivateKey(<redacted>)"),
        }
    }
}

/// Limits and liveness settings for connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SshOptions {
    /// Bound on the TCP connect plus the SSH handshake (key exchange).
    pub connect_timeout: Duration,
    /// Bound on user authentication.
    pub auth_timeout: Duration,
    /// Bound on pinning a first-seen host key ([`ApproveHostKey`]) before authenticating; keep it
    /// under the server's `LoginGraceTime` (OpenSSH: 120 s).
    pub approval_timeout: Duration,
    /// Send a keepalive after this much silence from the server; `None` never does.
    pub keepalive_interval: Option<Duration>,
    /// Close the connection after this many unanswered keepalives.
    pub keepalive_max: usize,
    /// Callers (runs, provisionings) one pooled connection serves at once; keep it at most half
    /// the server's `MaxSessions` (OpenSSH: 10), as each may hold two channels.
    pub users_per_connection: usize,
    /// Most pooled connections to one machine; callers beyond wait for a slot.
    pub max_connections_per_machine: usize,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(15),
            approval_timeout: Duration::from_secs(45),
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            users_per_connection: 4,
            max_connections_per_machine: 64,
        }
    }
}

/// Why an SSH operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The TCP connection was refused or could not be routed.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A stage did not finish within its bound.
    #[error("{stage} with {addr} timed out after {after:?}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// `connect` (TCP and handshake) or `authentication`.
        stage: &'static str,
        /// The bound that was exceeded.
        after: Duration,
    },
    /// The server refused the credential.
    #[error("authentication as {username} failed")]
    AuthFailed {
        /// The user we tried to log in as.
        username: String,
    },
    /// The server presented a host key other than the pinned one; nothing was sent to it.
    #[error("host key mismatch: expected {expected}, the server presented {presented}")]
    HostKeyMismatch {
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint the server presented.
        presented: String,
    },
    /// The server presented a key seen for the first time and it could not be pinned (another
    /// key is pinned, or the pin was refused or not answered); nothing was sent to it.
    #[error("host key {presented} not pinned: {reason}")]
    HostKeyNotApproved {
        /// The fingerprint the server presented.
        presented: String,
        /// Why the approval failed.
        #[source]
        reason: ApprovalError,
    },
    /// The private key could not be decoded.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// An SFTP request failed.
    #[error("sftp failed at {path}: {reason}")]
    Sftp {
        /// The remote path concerned.
        path: String,
        /// The server's or the library's reason.
        reason: String,
    },
    /// The operation was cancelled by the caller; its channel was closed.
    #[error("cancelled")]
    Cancelled,
    /// Any other SSH failure (a broken connection included).
    #[error("ssh {context} failed: {source}")]
    Protocol {
        /// What was being done.
        context: &'static str,
        /// russh's error.
        #[source]
        source: russh::Error,
    },
}

/// The kind of an [`SshError`], as a small value for classification and reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SshErrorKind {
    /// See [`SshError::Unreachable`].
    Unreachable,
    /// See [`SshError::Timeout`].
    Timeout,
    /// See [`SshError::AuthFailed`].
    AuthFailed,
    /// See [`SshError::HostKeyMismatch`].
    HostKeyMismatch,
    /// See [`SshError::HostKeyNotApproved`].
    HostKeyNotApproved,
    /// See [`SshError::InvalidKey`].
    InvalidKey,
    /// See [`SshError::Sftp`].
    Sftp,
    /// See [`SshError::Cancelled`].
    Cancelled,
    /// See [`SshError::Protocol`].
    Protocol,
}

impl SshError {
    /// The error's kind.
    pub fn kind(&self) -> SshErrorKind {
        match self {
            SshError::Unreachable { .. } => SshErrorKind::Unreachable,
            SshError::Timeout { .. } => SshErrorKind::Timeout,
            SshError::AuthFailed { .. } => SshErrorKind::AuthFailed,
            SshError::HostKeyMismatch { .. } => SshErrorKind::HostKeyMismatch,
            SshError::HostKeyNotApproved { .. } => SshErrorKind::HostKeyNotApproved,
            SshError::InvalidKey(_) => SshErrorKind::InvalidKey,
            SshError::Sftp { .. } => SshErrorKind::Sftp,
            SshError::Cancelled => SshErrorKind::Cancelled,
            SshError::Protocol { .. } => SshErrorKind::Protocol,
        }
    }

    fn protocol(context: &'static str) -> impl FnOnce(russh::Error) -> SshError {
        move |source| SshError::Protocol { context, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_credentials() {
        let target = SshTarget {
            host: "h".into(),
            port: 22,
            username: "u".into(),
            auth: SshAuth::Password("hunter2".into()),
            pinned_host_key: None,
        };
        let key = SshAuth::PrivateKey("-----BEGIN OPENSSH PRIVATE KEY-----secret".into());
        assert!(!format!("{target:?}").contains("hunter2"));
        assert!(!format!("{key:?}").contains("secret"));
    }
}
