//! One interface over the two ways of reaching a machine: a pooled SSH connection or the
//! executor's own machine.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::classify::ErrorCode;
use crate::local::{LocalError, LocalMachine};
use crate::ssh::{Output, PooledConnection, RemoteExit, SshError, SshErrorKind};

/// Where a run or a provisioning script executes.
#[derive(Clone)]
pub enum Transport {
    /// A machine reached over SSH (a connection shared through [`SshPool`](crate::ssh::SshPool),
    /// holding one of its slots while the transport lives).
    Ssh(Arc<PooledConnection>),
    /// The executor's own machine (host `local`).
    Local(LocalMachine),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Ssh(connection) => write!(f, "Ssh({})", connection.addr()),
            Transport::Local(machine) => write!(f, "Local({})", machine.home().display()),
        }
    }
}

/// Why a transport operation failed, whichever transport it was.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The SSH layer failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The local transport failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// The kind of a [`TransportError`], independent of the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportErrorKind {
    /// The machine cannot be reached (refused, unroutable, connect or auth timeout).
    Unreachable,
    /// The credentials were refused or the private key is unusable.
    AuthFailed,
    /// The host key is not the pinned one, or a first-seen key could not be pinned.
    HostKeyMismatch,
    /// The connection broke, or waiting for a command failed.
    ConnectionLost,
    /// Commands cannot be started (local: `sh` missing, no home directory).
    CannotSpawn,
    /// A file could not be written or read (SFTP or local file system), or is too large.
    File,
    /// The operation was cancelled by its caller.
    Cancelled,
}

impl TransportError {
    /// The error's kind.
    pub fn kind(&self) -> TransportErrorKind {
        match self {
            TransportError::Ssh(error) => match error.kind() {
                SshErrorKind::Unreachable | SshErrorKind::Timeout => {
                    TransportErrorKind::Unreachable
                }
                SshErrorKind::AuthFailed | SshErrorKind::InvalidKey => {
                    TransportErrorKind::AuthFailed
                }
                SshErrorKind::HostKeyMismatch | SshErrorKind::HostKeyNotApproved => {
                    TransportErrorKind::HostKeyMismatch
                }
                SshErrorKind::Sftp => TransportErrorKind::File,
                SshErrorKind::Cancelled => TransportErrorKind::Cancelled,
                SshErrorKind::Protocol => TransportErrorKind::ConnectionLost,
            },
            TransportError::Local(error) => match error {
                LocalError::NoHome | LocalError::Spawn(_) => TransportErrorKind::CannotSpawn,
                LocalError::Wait(_) => TransportErrorKind::ConnectionLost,
                LocalError::File { .. } | LocalError::TooLarge { .. } => TransportErrorKind::File,
                LocalError::Cancelled => TransportErrorKind::Cancelled,
            },
        }
    }
}

impl TransportErrorKind {
    /// The `error_code` a run gets when this error ends it ([`classify`](crate::classify)).
    /// File errors count as [`ErrorCode::UploadFailed`]: the run's files or working directory.
    pub fn error_code(self) -> ErrorCode {
        match self {
            TransportErrorKind::Unreachable | TransportErrorKind::CannotSpawn => {
                ErrorCode::SshUnreachable
            }
            TransportErrorKind::AuthFailed => ErrorCode::SshAuthFailed,
            TransportErrorKind::HostKeyMismatch => ErrorCode::HostKeyMismatch,
            TransportErrorKind::ConnectionLost | TransportErrorKind::Cancelled => {
                ErrorCode::SshConnectionLost
            }
            TransportErrorKind::File => ErrorCode::UploadFailed,
        }
    }
}

impl Transport {
    /// Runs `script` (an [`ssh_exec_line`](crate::render::ssh_exec_line)), streaming its output
    /// to `sink`; when `cancel` fires, stops waiting (SSH: closes the channel; local: kills `sh`)
    /// and returns a [`TransportErrorKind::Cancelled`] error. Remote process groups are not
    /// killed by either: use [`render::kill`](crate::render::kill).
    pub async fn exec(
        &self,
        script: &str,
        sink: &mpsc::Sender<Output>,
        cancel: &CancellationToken,
    ) -> Result<RemoteExit, TransportError> {
        match self {
            Transport::Ssh(connection) => {
                Ok(connection.exec_cancellable(script, sink, cancel).await?)
            }
            Transport::Local(machine) => Ok(machine.exec(script, sink, cancel).await?),
        }
    }

    /// Runs `script` to the end, discarding its output; its exit, or why it could not run.
    pub async fn exec_quiet(&self, script: &str) -> Result<RemoteExit, TransportError> {
        let (sink, mut source) = mpsc::channel(16);
        let drain = tokio::spawn(async move { while source.recv().await.is_some() {} });
        let result = self.exec(script, &sink, &CancellationToken::new()).await;
        drop(sink);
        let _ = drain.await;
        result
    }

    /// Writes `(path, contents)` pairs, creating parent directories; relative paths are relative
    /// to the remote user's home.
    pub async fn upload<P, B>(&self, files: &[(P, B)]) -> Result<(), TransportError>
    where
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        match self {
            Transport::Ssh(connection) => Ok(connection.upload(files).await?),
            Transport::Local(machine) => Ok(machine.upload(files).await?),
        }
    }

    /// Reads one file (relative to the home), `Ok(None)` when it does not exist, an error when it
    /// holds more than `max_bytes`.
    pub async fn download(
        &self,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        match self {
            Transport::Ssh(connection) => Ok(connection.download(path, max_bytes).await?),
            Transport::Local(machine) => Ok(machine.download(path, max_bytes).await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_seen_key_that_was_not_pinned_ends_the_run_as_a_host_key_mismatch() {
        let error = TransportError::from(SshError::HostKeyNotApproved {
            presented: "SHA256:x".into(),
            reason: "another key is pinned".into(),
        });
        assert_eq!(error.kind(), TransportErrorKind::HostKeyMismatch);
        assert_eq!(error.kind().error_code(), ErrorCode::HostKeyMismatch);
    }
}
