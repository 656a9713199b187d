//! The local transport, for machines registered with host `local`: commands run as child
//! processes of the executor (`sh -c <script>`, the scripts [`render`](crate::render) produces for
//! Linux) and files are read and written directly, with the same shapes as the SSH layer
//! ([`Output`] chunks, [`RemoteExit`]). Useful for a single-box lab and for demos on a machine
//! without an SSH server.
//!
//! A child never inherits the executor's environment, which may hold `RUNLEDGER_SECRET_KEY`,
//! `NATS_URL` or `DATABASE_URL`: it starts from an empty one with only the names of
//! [`PASSED_ENV`] (locale, time zone, `PATH`, pip's index and proxy settings) copied over, and
//! the run script adds the test case's and the run's env. Executors run local work only when
//! their operator allows it (`RUNLEDGER_EXECUTOR_ALLOW_LOCAL`).
//!
//! Like an SSH session, every command starts in the home directory with `HOME` set to it, so `~`
//! and `$HOME` in scripts, and relative paths in [`upload`](LocalMachine::upload) and
//! [`download`](LocalMachine::download), mean the executor user's home (or the one given to
//! [`LocalMachine::with_home`]).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ssh::{Output, RemoteExit};

/// Why a local operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The executor user has no home directory.
    #[error("no home directory for the executor user")]
    NoHome,
    /// `sh` could not be started.
    #[error("cannot start sh: {0}")]
    Spawn(#[source] io::Error),
    /// Reading the command's output or waiting for it failed.
    #[error("waiting for the command failed: {0}")]
    Wait(#[source] io::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A downloaded file is larger than allowed.
    #[error("{} is {size} bytes, more than the limit of {max_bytes}", path.display())]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// Its size (at least; it may still be growing).
        size: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The operation was cancelled by the caller; the `sh` child was killed and reaped.
    #[error("cancelled")]
    Cancelled,
}

/// The only variables a local child takes from the executor's environment: what a shell, a
/// locale and pip need to work on this host. Everything else (the executor's settings and
/// secrets above all) stays out. Names ending in `*` are prefixes.
pub const PASSED_ENV: &[&str] = &[
    "PATH",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_CERT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// The executor's variables a child may see (see [`PASSED_ENV`]).
fn passed_env() -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().filter(|(name, _)| {
        let name = name.to_string_lossy();
        PASSED_ENV
            .iter()
            .any(|passed| match passed.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == *passed,
            })
    })
}

/// The executor's own machine, seen as a run target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMachine {
    home: PathBuf,
}

impl LocalMachine {
    /// The executor user's machine, with its home directory.
    pub fn new() -> Result<Self, LocalError> {
        std::env::home_dir()
            .filter(|home| home.is_absolute())
            .map(Self::with_home)
            .ok_or(LocalError::NoHome)
    }

    /// A machine whose home directory (`HOME` of commands, base of relative paths) is `home`.
    pub fn with_home(home: PathBuf) -> Self {
        LocalMachine { home }
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Runs `sh -c <script>` in the home directory, sends its stdout and stderr to `sink` as they
    /// arrive, and returns how it ended once it has exited and both pipes have closed.
    ///
    /// When `cancel` fires, the `sh` child is killed (`SIGKILL`) and reaped, and
    /// [`LocalError::Cancelled`] is returned; processes it started in their own process group
    /// (a run script's `setsid`) are the caller's to kill, with render's kill commands. Dropping
    /// the future kills the child too. A dropped receiver does not stop the command.
    #[tracing::instrument(skip_all, err)]
    pub async fn exec(
        &self,
        script: &str,
        sink: &mpsc::Sender<Output>,
        cancel: &CancellationToken,
    ) -> Result<RemoteExit, LocalError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env_clear()
            .envs(passed_env())
            .env("HOME", &self.home)
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(LocalError::Spawn)?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(LocalError::Wait(io::Error::other("child pipes missing")));
        };
        let finished = tokio::select! {
            status = async {
                pump(stdout, stderr, sink).await?;
                child.wait().await
            } => Some(status),
            () = cancel.cancelled() => None,
        };
        match finished {
            Some(status) => Ok(exit_of(status.map_err(LocalError::Wait)?)),
            None => {
                let _ = child.start_kill();
                child.wait().await.map_err(LocalError::Wait)?;
                Err(LocalError::Cancelled)
            }
        }
    }

    /// Writes each `(path, contents)` pair, creating or truncating the file and creating missing
    /// parent directories. Relative paths (and `~/…`) are relative to the home directory.
    #[tracing::instrument(skip_all, fields(files = files.len()), err)]
    pub async fn upload<P, B>(&self, files: &[(P, B)]) -> Result<(), LocalError>
    where
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        for (path, contents) in files {
            let path = self.resolve(path.as_ref());
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(file_error(parent))?;
            }
            tokio::fs::write(&path, contents.as_ref())
                .await
                .map_err(file_error(&path))?;
        }
        Ok(())
    }

    /// Reads the file at `path` (relative to the home directory unless absolute). `Ok(None)` when
    /// it does not exist; [`LocalError::TooLarge`] when it holds more than `max_bytes` bytes.
    #[tracing::instrument(skip_all, fields(path), err)]
    pub async fn download(
        &self,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, LocalError> {
        let path = self.resolve(path);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(file_error(&path)(error)),
        };
        let size = file.metadata().await.map_err(file_error(&path))?.len();
        if size > max_bytes {
            return Err(LocalError::TooLarge {
                path,
                size,
                max_bytes,
            });
        }
        // The file may grow between the stat and the read: read at most one byte past the limit.
        let mut contents = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut contents)
            .await
            .map_err(file_error(&path))?;
        let size = contents.len() as u64;
        if size > max_bytes {
            return Err(LocalError::TooLarge {
                path,
                size,
                max_bytes,
            });
        }
        Ok(Some(contents))
    }

    fn resolve(&self, path: &str) -> PathBuf {
        match path.strip_prefix('~') {
            Some("") => self.home.clone(),
            Some(rest) if rest.starts_with('/') => self.home.join(rest.trim_start_matches('/')),
            _ => self.home.join(path),
        }
    }
}

/// Forwards both pipes to `sink` until both have closed.
async fn pump(
    mut stdout: impl AsyncRead + Unpin,
    mut stderr: impl AsyncRead + Unpin,
    sink: &mpsc::Sender<Output>,
) -> io::Result<()> {
    let (mut out_buf, mut err_buf) = (vec![0; 32 * 1024], vec![0; 32 * 1024]);
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            read = stdout.read(&mut out_buf), if out_open => match read? {
                0 => out_open = false,
                n => {
                    let _ = sink.send(Output::Stdout(Bytes::copy_from_slice(&out_buf[..n]))).await;
                }
            },
            read = stderr.read(&mut err_buf), if err_open => match read? {
                0 => err_open = false,
                n => {
                    let _ = sink.send(Output::Stderr(Bytes::copy_from_slice(&err_buf[..n]))).await;
                }
            },
        }
    }
    Ok(())
}

fn exit_of(status: ExitStatus) -> RemoteExit {
    if let Some(code) = status.code() {
        return RemoteExit::Code(u32::try_from(code).unwrap_or(u32::MAX));
    }
    match status.signal() {
        Some(signal) => RemoteExit::Signal {
            name: signal_name(signal),
            core_dumped: status.core_dumped(),
        },
        None => RemoteExit::Unknown,
    }
}

/// The signal's name without `SIG`, as sshd reports it; the number for uncommon ones.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        6 => "ABRT",
        8 => "FPE",
        9 => "KILL",
        11 => "SEGV",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        #[cfg(target_os = "linux")]
        10 => "USR1",
        #[cfg(target_os = "linux")]
        12 => "USR2",
        other => return other.to_string(),
    };
    name.to_owned()
}

fn file_error(path: &Path) -> impl FnOnce(io::Error) -> LocalError + '_ {
    move |source| LocalError::File {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
