//! Opening an authenticated connection: TCP with a bound, the handshake with the host key checked
//! against the pin, then password or public-key authentication.
//!
//! A machine without a pinned key is trusted on first use, but only once the key is pinned: after
//! the handshake (which proves the server holds the key it presented) and before any credential
//! goes out, the caller's [`ApproveHostKey`] is asked to pin the presented key. If it refuses, or
//! does not answer in time, the connection is dropped unauthenticated: a server that merely
//! answers first never sees a password or a signature.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate, decode_secret_key};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{SshAuth, SshError, SshOptions, SshTarget};

/// An authenticated SSH connection; cheap to share (`Arc`), with any number of channels on it.
pub struct SshConnection {
    pub(super) handle: Handle<HostKeyCheck>,
    host_key: String,
    addr: String,
}

impl SshConnection {
    /// The `SHA256:...` fingerprint of the host key the server presented.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// True once the connection is gone (closed by either side or broken).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Disconnects politely; channels still open on the connection end.
    pub async fn close(&self) -> Result<(), SshError> {
        self.handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await
            .map_err(SshError::protocol("disconnect"))
    }
}

/// Why a first-seen host key was not approved; kept as the source of
/// [`SshError::HostKeyNotApproved`].
pub type ApprovalError = Box<dyn StdError + Send + Sync>;

/// The step between the handshake and authentication for a target without a pinned key: pins
/// the presented key (or finds it pinned already) before any credential is sent.
pub trait ApproveHostKey: Sync {
    /// `Ok` once `fingerprint` (`SHA256:...`) is the machine's pinned key; any error drops the
    /// connection unauthenticated.
    fn approve(&self, fingerprint: &str) -> impl Future<Output = Result<(), ApprovalError>> + Send;
}

/// Approves any first-seen key without recording it: for tools and tests that pin nothing
/// themselves. The executor's service pins through the handler instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptFirstKey;

impl ApproveHostKey for AcceptFirstKey {
    async fn approve(&self, _fingerprint: &str) -> Result<(), ApprovalError> {
        Ok(())
    }
}

/// Connects and authenticates, within `options`' bounds.
///
/// With a pinned host key, a server presenting another key is refused during the handshake
/// ([`SshError::HostKeyMismatch`]). Without one, `approve` must pin the presented key first
/// ([`SshError::HostKeyNotApproved`] otherwise); its fingerprint is then returned as `Some(..)`.
/// Either way no credential is sent to a key that is not pinned.
#[tracing::instrument(skip_all, fields(addr = %target.addr(), user = %target.username), err)]
pub async fn connect(
    target: &SshTarget,
    options: &SshOptions,
    approve: &impl ApproveHostKey,
) -> Result<(SshConnection, Option<String>), SshError> {
    let addr = target.addr();
    let seen = Arc::new(Mutex::new(None));
    let check = HostKeyCheck {
        pinned: target.pinned_host_key.clone(),
        seen: seen.clone(),
    };
    let handshake = async {
        let stream = tcp_connect(target).await?;
        client::connect_stream(Arc::new(client_config(options)), stream, check).await
    };
    let result = timeout(options.connect_timeout, handshake).await;
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).take();
    let mut handle = match result {
        Err(_) => return Err(timed_out(&addr, "connect", options.connect_timeout)),
        Ok(Ok(handle)) => handle,
        Ok(Err(error)) => return Err(handshake_error(error, target, seen)),
    };
    let host_key = seen.ok_or_else(|| SshError::Protocol {
        context: "handshake",
        source: russh::Error::UnknownKey,
    })?;
    if target.pinned_host_key.is_none() {
        approve_first_use(&handle, &host_key, options, approve).await?;
    }
    match timeout(options.auth_timeout, authenticate(&mut handle, target)).await {
        Err(_) => return Err(timed_out(&addr, "authentication", options.auth_timeout)),
        Ok(result) => result?,
    }
    tracing::debug!(host_key = %host_key, "ssh connection authenticated");
    let first_use = target.pinned_host_key.is_none().then(|| host_key.clone());
    let connection = SshConnection {
        handle,
        host_key,
        addr,
    };
    Ok((connection, first_use))
}

/// Waits for `approve` to pin `host_key`; on refusal or timeout disconnects without having sent
/// any credential.
async fn approve_first_use(
    handle: &Handle<HostKeyCheck>,
    host_key: &str,
    options: &SshOptions,
    approve: &impl ApproveHostKey,
) -> Result<(), SshError> {
    let refused = match timeout(options.approval_timeout, approve.approve(host_key)).await {
        Ok(Ok(())) => {
            tracing::info!(host_key, "first-seen ssh host key pinned; authenticating");
            return Ok(());
        }
        Ok(Err(reason)) => reason,
        Err(_) => format!("no answer within {:?}", options.approval_timeout).into(),
    };
    tracing::warn!(host_key, reason = %refused, "first-seen ssh host key not pinned; disconnecting unauthenticated");
    let _ = handle
        .disconnect(
            russh::Disconnect::HostKeyNotVerifiable,
            "host key not pinned",
            "en",
        )
        .await;
    Err(SshError::HostKeyNotApproved {
        presented: host_key.to_owned(),
        reason: refused,
    })
}

fn client_config(options: &SshOptions) -> client::Config {
    client::Config {
        keepalive_interval: options.keepalive_interval,
        keepalive_max: options.keepalive_max,
        nodelay: true,
        ..Default::default()
    }
}

async fn tcp_connect(target: &SshTarget) -> Result<TcpStream, HandshakeError> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(HandshakeError::Tcp)?;
    stream.set_nodelay(true).map_err(HandshakeError::Tcp)?;
    Ok(stream)
}

fn timed_out(addr: &str, stage: &'static str, after: std::time::Duration) -> SshError {
    SshError::Timeout {
        addr: addr.to_owned(),
        stage,
        after,
    }
}

/// Names the failure: TCP, a host key other than the pinned one, or the protocol.
fn handshake_error(error: HandshakeError, target: &SshTarget, seen: Option<String>) -> SshError {
    match (error, &target.pinned_host_key, seen) {
        (HandshakeError::Tcp(e), _, _) => SshError::Unreachable {
            addr: target.addr(),
            reason: e.to_string(),
        },
        (_, Some(expected), Some(presented)) if *expected != presented => {
            SshError::HostKeyMismatch {
                expected: expected.clone(),
                presented,
            }
        }
        (HandshakeError::Ssh(source), _, _) => SshError::Protocol {
            context: "handshake",
            source,
        },
    }
}

async fn authenticate(
    handle: &mut Handle<HostKeyCheck>,
    target: &SshTarget,
) -> Result<(), SshError> {
    let user = target.username.as_str();
    let result = match &target.auth {
        SshAuth::Password(password) => handle.authenticate_password(user, password).await,
        SshAuth::PrivateKey(pem) => {
            let key =
                decode_secret_key(pem, None).map_err(|e| SshError::InvalidKey(e.to_string()))?;
            let hash = if key.algorithm().is_rsa() {
                rsa_hash(handle).await?
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            handle.authenticate_publickey(user, key).await
        }
    };
    match result
        .map_err(SshError::protocol("authentication"))?
        .success()
    {
        true => Ok(()),
        false => Err(SshError::AuthFailed {
            username: user.to_owned(),
        }),
    }
}

/// The signature hash for an RSA key: what the server advertises, SHA-256 when it says nothing
/// (OpenSSH ≥ 8.8 refuses SHA-1 `ssh-rsa` signatures).
async fn rsa_hash(handle: &Handle<HostKeyCheck>) -> Result<Option<HashAlg>, SshError> {
    let advertised = handle
        .best_supported_rsa_hash()
        .await
        .map_err(SshError::protocol("authentication"))?;
    Ok(advertised.unwrap_or(Some(HashAlg::Sha256)))
}

/// A handshake failure, before it is named.
pub(super) enum HandshakeError {
    Tcp(std::io::Error),
    Ssh(russh::Error),
}

impl From<russh::Error> for HandshakeError {
    fn from(error: russh::Error) -> Self {
        HandshakeError::Ssh(error)
    }
}

impl std::fmt::Debug for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Tcp(e) => write!(f, "tcp: {e}"),
            HandshakeError::Ssh(e) => write!(f, "ssh: {e}"),
        }
    }
}

/// The russh client handler: records the presented host key and accepts it only when it matches
/// the pin (or when there is no pin).
pub(super) struct HostKeyCheck {
    pinned: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        let accepted = self.pinned.as_ref().is_none_or(|pin| *pin == presented);
        if !accepted {
            tracing::warn!(presented = %presented, "ssh host key does not match the pinned key");
        }
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(presented);
        Ok(accepted)
    }
}
