//! `runledger db grant`: the least-privilege roles the services connect as.

use crate::database::{DbUser, read_secret_file};
use crate::settings::Settings;
use anyhow::Context;
use clap::{Args, Subcommand};
use runledger_store::roles::{self, DEFAULT_ROLE_PREFIX, RolePasswords, Roles};
use runledger_types::SecretString;
use std::path::PathBuf;

/// What `runledger db` can do.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the roles `<prefix>_handler`, `<prefix>_projector` and `<prefix>_gateway` if
    /// missing and grant each only what its component needs (idempotent: run it after every
    /// `runledger migrate`). Connects with DATABASE_URL, as the owner of the log's tables with
    /// CREATEROLE, or as a superuser. Passwords come from files, never from the command line.
    ///
    /// Example: `runledger db grant --handler-password-file /run/secrets/handler --projector-password-file /run/secrets/projector --gateway-password-file /run/secrets/gateway`
    Grant(GrantArgs),
}

/// Arguments of `runledger db grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Prefix of the role names (role names are shared by every database of the cluster).
    #[arg(long, env = "RUNLEDGER_DB_ROLE_PREFIX", default_value = DEFAULT_ROLE_PREFIX)]
    pub role_prefix: String,
    /// A file holding the password to set on `<prefix>_handler`.
    #[arg(long, env = "RUNLEDGER_HANDLER_DB_PASSWORD_FILE")]
    pub handler_password_file: Option<PathBuf>,
    /// A file holding the password to set on `<prefix>_projector`.
    #[arg(long, env = "RUNLEDGER_PROJECTOR_DB_PASSWORD_FILE")]
    pub projector_password_file: Option<PathBuf>,
    /// A file holding the password to set on `<prefix>_gateway`.
    #[arg(long, env = "RUNLEDGER_GATEWAY_DB_PASSWORD_FILE")]
    pub gateway_password_file: Option<PathBuf>,
    /// Print the statements instead of running them (passwords are not printed).
    #[arg(long)]
    pub print: bool,
}

/// Runs a `db` subcommand.
pub async fn run(settings: &Settings, command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Grant(args) => grant(settings, &args).await,
    }
}

async fn grant(settings: &Settings, args: &GrantArgs) -> anyhow::Result<()> {
    let roles = Roles::new(&args.role_prefix).context("--role-prefix")?;
    let pool = settings.database.connect(DbUser::Owner, 1).await?;
    if args.print {
        let at = roles::ownership(&pool).await?;
        for statement in roles::grant_sql(&roles, &at) {
            println!("{statement};");
        }
        return Ok(());
    }
    let passwords = RolePasswords {
        handler: password(args.handler_password_file.as_ref())?,
        projector: password(args.projector_password_file.as_ref())?,
        gateway: password(args.gateway_password_file.as_ref())?,
    };
    let at = roles::grant(&pool, &roles, &passwords)
        .await
        .context("granting the service roles")?;
    pool.close().await;
    let [handler, projector, gateway] = roles.all();
    eprintln!(
        "roles {handler}, {projector} and {gateway} granted on database {} (owner {})",
        at.database, at.owner
    );
    Ok(())
}

fn password(file: Option<&PathBuf>) -> anyhow::Result<Option<SecretString>> {
    file.map(|path| read_secret_file(path).map(SecretString::new))
        .transpose()
}
