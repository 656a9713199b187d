//! Uploading files over SFTP, creating their parent directories, and downloading one file with a
//! size bound.

use std::collections::HashSet;

use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{SshConnection, SshError};

impl SshConnection {
    /// Writes each `(remote_path, contents)` pair, creating or truncating the file and creating
    /// missing parent directories. Relative paths are relative to the remote user's home
    /// directory (SFTP does not expand `~`).
    #[tracing::instrument(skip_all, fields(addr = %self.addr(), files = files.len()), err)]
    pub async fn upload<P, B>(&self, files: &[(P, B)]) -> Result<(), SshError>
    where
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        let sftp = self.sftp().await?;
        let mut made = HashSet::new();
        for (path, contents) in files {
            let path = path.as_ref();
            create_parents(&sftp, path, &mut made).await?;
            write_file(&sftp, path, contents.as_ref()).await?;
        }
        let _ = sftp.close().await;
        Ok(())
    }

    /// Reads the file at `path` (relative paths are relative to the remote user's home), e.g. a
    /// run's JUnit XML. `Ok(None)` when it does not exist; an [`SshError::Sftp`] error when it
    /// holds more than `max_bytes` bytes.
    #[tracing::instrument(skip_all, fields(addr = %self.addr(), path), err)]
    pub async fn download(&self, path: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, SshError> {
        let sftp = self.sftp().await?;
        let result = read_bounded(&sftp, path, max_bytes).await;
        let _ = sftp.close().await;
        result
    }

    /// Opens an SFTP session on a new channel.
    async fn sftp(&self) -> Result<SftpSession, SshError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(SshError::protocol("channel open"))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(SshError::protocol("sftp subsystem"))?;
        SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| sftp_error("<session>", e))
    }
}

async fn write_file(sftp: &SftpSession, path: &str, contents: &[u8]) -> Result<(), SshError> {
    let mut file = sftp.create(path).await.map_err(|e| sftp_error(path, e))?;
    file.write_all(contents)
        .await
        .map_err(|e| io_error(path, e))?;
    file.shutdown().await.map_err(|e| io_error(path, e))
}

async fn read_bounded(
    sftp: &SftpSession,
    path: &str,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, SshError> {
    let mut file = match sftp.open(path).await {
        Ok(file) => file,
        Err(SftpError::Status(status)) if status.status_code == StatusCode::NoSuchFile => {
            return Ok(None);
        }
        Err(error) => return Err(sftp_error(path, error)),
    };
    let size = file.metadata().await.map_err(|e| sftp_error(path, e))?.size;
    if let Some(size) = size
        && size > max_bytes
    {
        return Err(too_large(path, size, max_bytes));
    }
    // The file may grow between the stat and the read: read at most one byte past the limit.
    let mut contents = Vec::new();
    (&mut file)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut contents)
        .await
        .map_err(|e| io_error(path, e))?;
    let _ = file.shutdown().await;
    if contents.len() as u64 > max_bytes {
        return Err(too_large(path, contents.len() as u64, max_bytes));
    }
    Ok(Some(contents))
}

fn too_large(path: &str, size: u64, max_bytes: u64) -> SshError {
    SshError::Sftp {
        path: path.to_owned(),
        reason: format!("file is {size} bytes, more than the limit of {max_bytes}"),
    }
}

/// Creates every missing ancestor of `path`, remembering those already checked in `made`.
async fn create_parents(
    sftp: &SftpSession,
    path: &str,
    made: &mut HashSet<String>,
) -> Result<(), SshError> {
    for dir in ancestors(path) {
        if made.contains(&dir) {
            continue;
        }
        let exists = sftp
            .try_exists(dir.as_str())
            .await
            .map_err(|e| sftp_error(&dir, e))?;
        if !exists {
            // Another upload may create it at the same moment: only a still-missing dir is an error.
            if let Err(error) = sftp.create_dir(dir.as_str()).await
                && !sftp.try_exists(dir.as_str()).await.unwrap_or(false)
            {
                return Err(sftp_error(&dir, error));
            }
        }
        made.insert(dir);
    }
    Ok(())
}

/// The directories above `path`, outermost first (`a/b/c.txt` gives `a`, `a/b`).
fn ancestors(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let dirs = parts.len().saturating_sub(1);
    (1..=dirs)
        .map(|n| parts[..n].join("/"))
        .filter(|dir| !dir.is_empty())
        .collect()
}

fn sftp_error(path: &str, error: russh_sftp::client::error::Error) -> SshError {
    SshError::Sftp {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

fn io_error(path: &str, error: std::io::Error) -> SshError {
    SshError::Sftp {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::ancestors;

    #[test]
    fn ancestors_are_listed_outermost_first() {
        assert_eq!(ancestors("a/b/c.txt"), ["a", "a/b"]);
        assert_eq!(ancestors("/tmp/x/y"), ["/tmp", "/tmp/x"]);
        assert!(ancestors("file").is_empty());
    }
}
