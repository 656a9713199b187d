//! Which Postgres URL each part of the process connects with, and connecting with it.
//!
//! `DATABASE_URL` is the owner's URL (`runledger migrate`, `runledger db grant`) and every
//! component's fallback. `RUNLEDGER_HANDLER_DATABASE_URL`, `RUNLEDGER_PROJECTOR_DATABASE_URL` and
//! `RUNLEDGER_GATEWAY_DATABASE_URL` let each component of one `runledger serve` connect as its
//! own least-privilege role. Each variable has a `*_FILE` twin naming a file that holds the URL,
//! as container secrets are mounted, so a password need not sit in any environment.

use anyhow::Context;
use clap::Args;
use runledger_store::{PgPool, Prepared};
use std::fmt;
use std::path::{Path, PathBuf};

/// The URL when nothing is configured.
const DEFAULT_URL: &str = "postgres://localhost/runledger";

/// Who a connection is for: the owner, or one of the components that use the database (the
/// executor never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbUser {
    /// Migrations, grants, and the operator's CLI.
    Owner,
    /// The command handler, outbox relay and sealer.
    Handler,
    /// The projector (and `runledger projections`).
    Projector,
    /// The HTTP gateway.
    Gateway,
}

impl DbUser {
    /// The environment variable holding this user's URL.
    fn variable(self) -> &'static str {
        match self {
            Self::Owner => "DATABASE_URL",
            Self::Handler => "RUNLEDGER_HANDLER_DATABASE_URL",
            Self::Projector => "RUNLEDGER_PROJECTOR_DATABASE_URL",
            Self::Gateway => "RUNLEDGER_GATEWAY_DATABASE_URL",
        }
    }
}

/// The database URLs, from flags or the environment.
#[derive(Args, Clone, Default)]
pub struct DatabaseSettings {
    /// Postgres holding the event log and the read models: the owner's URL (migrations,
    /// grants), and every component's unless it has its own [default: postgres://localhost/runledger].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// A file holding DATABASE_URL (e.g. a container secret).
    #[arg(long, env = "DATABASE_URL_FILE", global = true)]
    pub database_url_file: Option<PathBuf>,
    /// The handler's URL (its least-privilege role), else DATABASE_URL.
    #[arg(
        long,
        env = "RUNLEDGER_HANDLER_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub handler_database_url: Option<String>,
    /// A file holding RUNLEDGER_HANDLER_DATABASE_URL.
    #[arg(long, env = "RUNLEDGER_HANDLER_DATABASE_URL_FILE", global = true)]
    pub handler_database_url_file: Option<PathBuf>,
    /// The projector's URL (its least-privilege role), else DATABASE_URL.
    #[arg(
        long,
        env = "RUNLEDGER_PROJECTOR_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub projector_database_url: Option<String>,
    /// A file holding RUNLEDGER_PROJECTOR_DATABASE_URL.
    #[arg(long, env = "RUNLEDGER_PROJECTOR_DATABASE_URL_FILE", global = true)]
    pub projector_database_url_file: Option<PathBuf>,
    /// The gateway's URL (its least-privilege role), else DATABASE_URL.
    #[arg(
        long,
        env = "RUNLEDGER_GATEWAY_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub gateway_database_url: Option<String>,
    /// A file holding RUNLEDGER_GATEWAY_DATABASE_URL.
    #[arg(long, env = "RUNLEDGER_GATEWAY_DATABASE_URL_FILE", global = true)]
    pub gateway_database_url_file: Option<PathBuf>,
}

/// A resolved URL and the setting it came from (for error messages; never the URL itself).
pub struct Resolved {
    /// The URL.
    pub url: String,
    /// `DATABASE_URL`, `RUNLEDGER_GATEWAY_DATABASE_URL_FILE`, ...
    pub source: String,
}

impl DatabaseSettings {
    /// The URL `user` connects with: its own setting, else the owner's, else the default.
    pub fn resolve(&self, user: DbUser) -> anyhow::Result<Resolved> {
        let (value, file) = match user {
            DbUser::Owner => (&self.database_url, &self.database_url_file),
            DbUser::Handler => (&self.handler_database_url, &self.handler_database_url_file),
            DbUser::Projector => (
                &self.projector_database_url,
                &self.projector_database_url_file,
            ),
            DbUser::Gateway => (&self.gateway_database_url, &self.gateway_database_url_file),
        };
        if let Some(resolved) = one_of(user.variable(), value.as_deref(), file.as_deref())? {
            return Ok(resolved);
        }
        match user {
            DbUser::Owner => Ok(Resolved {
                url: DEFAULT_URL.to_owned(),
                source: "the default DATABASE_URL".to_owned(),
            }),
            _ => self.resolve(DbUser::Owner),
        }
    }

    /// A pool for `user`, without touching migrations (for the CLI's reads and `migrate`).
    pub async fn connect(&self, user: DbUser, max_connections: u32) -> anyhow::Result<PgPool> {
        let resolved = self.resolve(user)?;
        open(&resolved, max_connections).await
    }

    /// A pool for a service: the owner migrates; a least-privilege role checks that the
    /// database is at this binary's migration and refuses to start otherwise.
    pub async fn service_pool(&self, user: DbUser, max_connections: u32) -> anyhow::Result<PgPool> {
        let resolved = self.resolve(user)?;
        let pool = open(&resolved, max_connections).await?;
        let prepared = runledger_store::prepare(&pool)
            .await
            .with_context(|| format!("preparing the database ({})", resolved.source))?;
        match prepared {
            Prepared::Migrated => tracing::debug!(?user, "migrations applied"),
            Prepared::Checked => tracing::debug!(?user, "least-privilege role; migrations checked"),
        }
        Ok(pool)
    }
}

async fn open(resolved: &Resolved, max_connections: u32) -> anyhow::Result<PgPool> {
    runledger_store::connect(&resolved.url, max_connections)
        .await
        .with_context(|| format!("connecting to Postgres ({})", resolved.source))
}

/// The value of `variable` or the contents of the file `variable_FILE`; both is a mistake.
fn one_of(
    variable: &str,
    value: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<Option<Resolved>> {
    match (value, file) {
        (Some(_), Some(_)) => anyhow::bail!("set {variable} or {variable}_FILE, not both"),
        (Some(url), None) => Ok(Some(Resolved {
            url: url.to_owned(),
            source: variable.to_owned(),
        })),
        (None, Some(path)) => {
            let url = read_secret_file(path).with_context(|| format!("{variable}_FILE"))?;
            Ok(Some(Resolved {
                url,
                source: format!("{variable}_FILE"),
            }))
        }
        (None, None) => Ok(None),
    }
}

/// A secret from a file: its contents without the trailing newline; empty is refused.
pub fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(!secret.is_empty(), "{} is empty", path.display());
    Ok(secret.to_owned())
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = |value: &Option<String>| value.as_deref().map(crate::settings::redact_url);
        f.debug_struct("DatabaseSettings")
            .field("database_url", &url(&self.database_url))
            .field("database_url_file", &self.database_url_file)
            .field("handler_database_url", &url(&self.handler_database_url))
            .field("handler_database_url_file", &self.handler_database_url_file)
            .field("projector_database_url", &url(&self.projector_database_url))
            .field(
                "projector_database_url_file",
                &self.projector_database_url_file,
            )
            .field("gateway_database_url", &url(&self.gateway_database_url))
            .field("gateway_database_url_file", &self.gateway_database_url_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("runledger-url-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn components_fall_back_to_database_url_and_files_work() {
        let owner = file("postgres://owner:pw@db/runledger\n");
        let settings = DatabaseSettings {
            database_url_file: Some(owner.clone()),
            gateway_database_url: Some("postgres://gw@db/runledger".into()),
            ..Default::default()
        };
        let gateway = settings.resolve(DbUser::Gateway).unwrap();
        assert_eq!(gateway.url, "postgres://gw@db/runledger");
        assert_eq!(gateway.source, "RUNLEDGER_GATEWAY_DATABASE_URL");
        let handler = settings.resolve(DbUser::Handler).unwrap();
        assert_eq!(handler.url, "postgres://owner:pw@db/runledger");
        assert_eq!(handler.source, "DATABASE_URL_FILE");
        std::fs::remove_file(owner).unwrap();
    }

    #[test]
    fn nothing_set_gives_the_default_and_both_set_is_refused() {
        let settings = DatabaseSettings::default();
        assert_eq!(
            settings.resolve(DbUser::Projector).unwrap().url,
            DEFAULT_URL
        );
        let path = file("postgres://x@db/y");
        let both = DatabaseSettings {
            projector_database_url: Some("postgres://x@db/y".into()),
            projector_database_url_file: Some(path.clone()),
            ..Default::default()
        };
        let err = both.resolve(DbUser::Projector).err().unwrap();
        assert!(err.to_string().contains("not both"), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn an_empty_or_missing_file_is_refused() {
        let empty = file("\n");
        assert!(read_secret_file(&empty).is_err());
        std::fs::remove_file(&empty).unwrap();
        assert!(read_secret_file(&empty).is_err());
    }

    #[test]
    fn debug_never_prints_a_password() {
        let settings = DatabaseSettings {
            database_url: Some("postgres://owner:hunter2@db/runledger".into()),
            gateway_database_url: Some("postgres://gw:hunter3@db/runledger".into()),
            ..Default::default()
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter"), "{printed}");
    }
}
