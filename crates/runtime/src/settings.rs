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
    /// Prefix of every subject and stream (`runledger` gives the contract's names).
    #[arg(
        long,
        env = "RUNLEDGER_NATS_PREFIX",
        default_value = "runledger",
        global = true
    )]
    pub nats_prefix: String,
    /// `text` or `json`.
    #[arg(
        long,
        env = "RUNLEDGER_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,
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
    /// The NATS names under the configured prefix.
    pub fn names(&self) -> anyhow::Result<BusNames> {
        BusNames::new(&self.nats_prefix).context("RUNLEDGER_NATS_PREFIX")
    }

    /// The credential key; without one, only `--dev` may go on (with a public key).
    pub fn secret_key(&self, dev: bool) -> anyhow::Result<SecretKey> {
        match (&self.secret_key, dev) {
            (Some(encoded), _) => SecretKey::from_base64(encoded).context("RUNLEDGER_SECRET_KEY"),
            (None, true) => {
                tracing::warn!(
                    "--dev: machine credentials are sealed with a public development key"
                );
                Ok(SecretKey::insecure_dev_key())
            }
            (None, false) => anyhow::bail!(
                "RUNLEDGER_SECRET_KEY is not set: set it to base64 of 32 random bytes \
                 (e.g. `openssl rand -base64 32`), or pass --dev for a throw-away setup"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

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
