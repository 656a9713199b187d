//! Process settings from flags and the environment (contract §1), validated at start-up.

use anyhow::Context;
use clap::Args;
use runledger_bus::BusNames;
use runledger_secrets::SecretKey;
use std::fmt;

/// Settings shared by every subcommand.
#[derive(Args)]
pub struct Settings {
    /// Postgres URLs: the owner's and each component's (`crate::database`).
    #[command(flatten)]
    pub database: crate::database::DatabaseSettings,
    /// NATS server with JetStream.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,
    /// Gateway listen address.
    #[arg(
        long,
        env = "RUNLEDGER_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub http_addr: String,
    /// Base64 of 32 bytes: the key that encrypts machine credentials at rest.
    #[arg(
        long,
        env = "RUNLEDGER_SECRET_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_key: Option<String>,
    /// A file holding the credential key (base64 of 32 bytes, surrounding white space ignored),
    /// as container secrets are mounted: the key then sits in no process environment.
    #[arg(long, env = "RUNLEDGER_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<std::path::PathBuf>,
    /// Prefix of every subject and stream (`runledger` gives the contract's names).
    #[arg(
        long,
        env = "RUNLEDGER_NATS_PREFIX",
        default_value = "runledger",
        global = true
    )]
    pub nats_prefix: String,
    /// NATS credentials and TLS.
    #[command(flatten)]
    pub nats_auth: NatsArgs,
    /// `text` or `json`.
    #[arg(
        long,
        env = "RUNLEDGER_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,
}

/// NATS credentials and TLS, under the names the `nats` CLI reads too.
#[derive(Args, Clone, Default)]
pub struct NatsArgs {
    /// User name (with NATS_PASSWORD).
    #[arg(long = "nats-user", env = "NATS_USER", global = true)]
    pub user: Option<String>,
    /// The user's password.
    #[arg(
        long = "nats-password",
        env = "NATS_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub password: Option<String>,
    /// A token the server accepts.
    #[arg(
        long = "nats-token",
        env = "NATS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// A `.creds` file (user JWT and NKey seed).
    #[arg(long = "nats-creds", env = "NATS_CREDS", global = true)]
    pub creds: Option<std::path::PathBuf>,
    /// A file holding a user NKey seed.
    #[arg(long = "nats-nkey", env = "NATS_NKEY", global = true)]
    pub nkey: Option<std::path::PathBuf>,
    /// CA certificates (PEM) to verify the server with; turns TLS on.
    #[arg(long = "nats-ca", env = "NATS_CA", global = true)]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM), with NATS_KEY.
    #[arg(long = "nats-cert", env = "NATS_CERT", global = true, requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long = "nats-key", env = "NATS_KEY", global = true, requires = "cert")]
    pub key: Option<std::path::PathBuf>,
}

impl NatsArgs {
    /// The bus's view of these settings.
    pub fn auth(&self) -> runledger_bus::NatsAuth {
        runledger_bus::NatsAuth {
            token: self.token.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            creds_file: self.creds.clone(),
            nkey_seed_file: self.nkey.clone(),
            ca_file: self.ca.clone(),
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database", &self.database)
            .field("nats_url", &redact_url(&self.nats_url))
            .field("http_addr", &self.http_addr)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[redacted]"),
            )
            .field("nats_prefix", &self.nats_prefix)
            .finish()
    }
}

/// Hides a password in `scheme://user:password@host`.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:[redacted]{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Settings {
    /// Connects to NATS with the configured credentials, naming the connection `name`.
    pub async fn nats(&self, name: &str) -> anyhow::Result<async_nats::Client> {
        runledger_bus::connect_with(&self.nats_url, name, &self.nats_auth.auth())
            .await
            .context("connecting to NATS (NATS_URL)")
    }

    /// The NATS names under the configured prefix.
    pub fn names(&self) -> anyhow::Result<BusNames> {
        BusNames::new(&self.nats_prefix).context("RUNLEDGER_NATS_PREFIX")
    }

    /// The credential key, from `RUNLEDGER_SECRET_KEY` or the file `RUNLEDGER_SECRET_KEY_FILE`
    /// names (not both); without one, only `--dev` may go on (with a public key).
    pub fn secret_key(&self, dev: bool) -> anyhow::Result<SecretKey> {
        let from_file = match &self.secret_key_file {
            Some(_) if self.secret_key.is_some() => anyhow::bail!(
                "both RUNLEDGER_SECRET_KEY and RUNLEDGER_SECRET_KEY_FILE are set: set one"
            ),
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("RUNLEDGER_SECRET_KEY_FILE {}", path.display()))?,
            ),
            None => None,
        };
        let encoded = from_file.as_deref().or(self.secret_key.as_deref());
        match (encoded, dev) {
            (Some(encoded), _) => SecretKey::from_base64(encoded.trim()).context(match from_file {
                Some(_) => "RUNLEDGER_SECRET_KEY_FILE",
                None => "RUNLEDGER_SECRET_KEY",
            }),
            (None, true) => {
                tracing::warn!(
                    "--dev: machine credentials are sealed with a public development key"
                );
                Ok(SecretKey::insecure_dev_key())
            }
            (None, false) => anyhow::bail!(
                "RUNLEDGER_SECRET_KEY is not set: set it (or RUNLEDGER_SECRET_KEY_FILE, a file \
                 holding it) to base64 of 32 random bytes (e.g. `openssl rand -base64 32`), or \
                 pass --dev for a throw-away setup"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Settings, redact_url};

    fn settings(secret_key: Option<&str>, secret_key_file: Option<std::path::PathBuf>) -> Settings {
        Settings {
            database: Default::default(),
            nats_url: String::new(),
            http_addr: String::new(),
            secret_key: secret_key.map(str::to_owned),
            secret_key_file,
            nats_prefix: "runledger".into(),
            nats_auth: Default::default(),
            log_format: "text".into(),
        }
    }

    #[test]
    fn the_secret_key_may_come_from_a_file() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let path = std::env::temp_dir().join(format!("rl-key-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, format!("{key}\n")).unwrap();
        let from_file = settings(None, Some(path.clone()))
            .secret_key(false)
            .unwrap();
        let from_env = settings(Some(key), None).secret_key(false).unwrap();
        assert_eq!(from_file.id(), from_env.id());
        let both = settings(Some(key), Some(path.clone())).secret_key(false);
        assert!(both.is_err(), "both set is refused");
        let missing = settings(None, Some(path.with_extension("missing"))).secret_key(true);
        let message = format!("{:#}", missing.err().unwrap());
        assert!(message.contains("RUNLEDGER_SECRET_KEY_FILE"), "{message}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://ada:pw@db/runledger"),
            "postgres://ada:[redacted]@db/runledger"
        );
        assert_eq!(
            redact_url("postgres://localhost/x"),
            "postgres://localhost/x"
        );
    }
}
