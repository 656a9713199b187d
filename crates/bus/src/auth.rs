//! How a process proves who it is to NATS and checks the server: the settings the `nats` CLI
//! reads too (`NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS`, `NATS_NKEY`, `NATS_CA`,
//! `NATS_CERT`, `NATS_KEY`). NATS is runledger's control plane: with one identity per
//! component and subject permissions on the server, a caller cannot act as an executor or as
//! the handler (docs/security.md).

use async_nats::ConnectOptions;
use std::fmt;
use std::path::PathBuf;

/// A connection's credentials and TLS settings; all optional (the default connects anonymously
/// and without TLS, unless the URL says `tls://`).
#[derive(Clone, Default)]
pub struct NatsAuth {
    /// A token (`authorization { token: … }` on the server).
    pub token: Option<String>,
    /// A user name, with [`NatsAuth::password`].
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// A `.creds` file (a user JWT and its NKey seed, as `nsc` writes them).
    pub creds_file: Option<PathBuf>,
    /// A file holding a user NKey seed (`SU…`).
    pub nkey_seed_file: Option<PathBuf>,
    /// CA certificates (PEM) the server's certificate must chain to; implies TLS.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM), with [`NatsAuth::key_file`], for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// A credential file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the NATS {what} {}: {source}", path.display())]
pub struct CredentialError {
    /// Which setting named it.
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl NatsAuth {
    /// `options` with these credentials and TLS settings applied.
    pub async fn apply(
        &self,
        mut options: ConnectOptions,
    ) -> Result<ConnectOptions, CredentialError> {
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(user) = &self.user {
            options =
                options.user_and_password(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(path) = &self.creds_file {
            options = options
                .credentials_file(path)
                .await
                .map_err(|source| CredentialError {
                    what: "credentials file (NATS_CREDS)",
                    path: path.clone(),
                    source,
                })?;
        }
        if let Some(path) = &self.nkey_seed_file {
            let seed = std::fs::read_to_string(path).map_err(|source| CredentialError {
                what: "NKey seed file (NATS_NKEY)",
                path: path.clone(),
                source,
            })?;
            options = options.nkey(seed.trim().to_owned());
        }
        if let Some(path) = &self.ca_file {
            options = options
                .add_root_certificates(path.clone())
                .require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        Ok(options)
    }
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |value: &Option<String>| value.as_ref().map(|_| "[redacted]");
        f.debug_struct("NatsAuth")
            .field("token", &secret(&self.token))
            .field("user", &self.user)
            .field("password", &secret(&self.password))
            .field("creds_file", &self.creds_file)
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish()
    }
}
