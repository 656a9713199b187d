//! Least-privilege Postgres roles for the services, and the grants that give each one only the
//! tables its work needs.
//!
//! The owner (the role that runs `runledger migrate`) owns the log's tables and the `gateway`
//! schema. The services connect as three login roles instead:
//!
//! - the handler reads and appends the log (`events`, `commands`, `event_seals`, `log_head`);
//! - the projector reads the log and owns the read-model schemas (`rm_*`, which it creates,
//!   rebuilds and swaps), writing only them and `projection_checkpoints`;
//! - the gateway reads the log, the checkpoints and the read models, and writes only the tables
//!   of schema `gateway` (its sessions).
//!
//! None may alter a table, drop a trigger, or update or delete a log row. Grants on the
//! `gateway` schema and on read models are by schema plus default privileges, so tables added
//! later get the same grants without editing this file. [`grant_sql`] is the single statement
//! list that both `runledger db grant` and the tests run; it is idempotent and safe to run
//! concurrently (role creation tolerates another session creating the same role).

use crate::error::StoreError;
use crate::scram;
use runledger_types::SecretString;
use sqlx::PgPool;

/// The names of the three service roles: `<prefix>_handler`, `<prefix>_projector`,
/// `<prefix>_gateway`. Role names are cluster-wide, so installs (or tests) sharing a Postgres
/// cluster use prefixes of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    prefix: String,
}

/// The default prefix: roles `runledger_handler`, `runledger_projector`, `runledger_gateway`.
pub const DEFAULT_ROLE_PREFIX: &str = "runledger";

impl Roles {
    /// The roles under `prefix`: lower-case letters, digits and `_`, starting with a letter, at
    /// most 40 characters (so every name fits Postgres's 63-byte identifiers and needs no
    /// quoting).
    pub fn new(prefix: &str) -> Result<Self, StoreError> {
        let plain = prefix.len() <= 40
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(StoreError::InvalidRoleName(prefix.to_owned()));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix the names share.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The command handler's role (handler/: intake, outbox relay, sealer).
    pub fn handler(&self) -> String {
        format!("{}_handler", self.prefix)
    }

    /// The projector's role.
    pub fn projector(&self) -> String {
        format!("{}_projector", self.prefix)
    }

    /// The gateway's role.
    pub fn gateway(&self) -> String {
        format!("{}_gateway", self.prefix)
    }

    /// All three, handler first.
    pub fn all(&self) -> [String; 3] {
        [self.handler(), self.projector(), self.gateway()]
    }
}

/// Passwords to set on the service roles; a role without one keeps whatever it has (none for a
/// new role: it can then log in only where `pg_hba.conf` needs no password, e.g. peer or cert).
#[derive(Debug, Default, Clone)]
pub struct RolePasswords {
    /// For the handler's role.
    pub handler: Option<SecretString>,
    /// For the projector's role.
    pub projector: Option<SecretString>,
    /// For the gateway's role.
    pub gateway: Option<SecretString>,
}

/// Who owns a migrated database's log, and where it lives: what the grants are made relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// The database.
    pub database: String,
    /// The schema holding `events` and the other log tables (usually `public`).
    pub schema: String,
    /// The role owning the migrations table: the one that migrates.
    pub owner: String,
}

/// Finds the owner and schema of the log's tables; the database must be migrated.
pub async fn ownership(pool: &PgPool) -> Result<Ownership, StoreError> {
    let found: Option<(String, String, String)> = sqlx::query_as(
        "SELECT current_database()::text, n.nspname::text, pg_get_userbyid(c.relowner)::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = to_regclass('_sqlx_migrations')",
    )
    .fetch_optional(pool)
    .await?;
    let (database, schema, owner) = found.ok_or(StoreError::NotMigrated)?;
    Ok(Ownership {
        database,
        schema,
        owner,
    })
}

/// `"name"`, quoted as a SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every statement that creates the roles (when missing) and sets their privileges, in order.
pub fn grant_sql(roles: &Roles, at: &Ownership) -> Vec<String> {
    let [handler, projector, gateway] = roles.all();
    let services = roles.all().join(", ");
    let (db, s, owner) = (ident(&at.database), ident(&at.schema), ident(&at.owner));
    let mut sql: Vec<String> = roles
        .all()
        .iter()
        .map(|role| {
            format!(
                "DO $$ BEGIN CREATE ROLE {role} LOGIN; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
        })
        .collect();
    for role in roles.all() {
        // Only when needed: an ALTER of a role another session alters at the same time fails
        // ("tuple concurrently updated"), and installs sharing a cluster may run this at once.
        sql.push(format!(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}' AND \
             (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls \
              OR NOT rolcanlogin)) THEN \
             ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS; \
             END IF; END $$"
        ));
        // No `"$user"` schema first: another role could otherwise plant a table of the same
        // name in a schema named after this role and have it read instead of the log.
        sql.push(format!(
            "ALTER ROLE {role} IN DATABASE {db} SET search_path = {s}"
        ));
    }
    sql.extend([
        format!("GRANT CONNECT ON DATABASE {db} TO {services}"),
        format!("GRANT CREATE ON DATABASE {db} TO {projector}"),
        format!("REVOKE CREATE ON SCHEMA {s} FROM PUBLIC"),
        format!("GRANT USAGE ON SCHEMA {s} TO {services}"),
        // Start from nothing, so running this again after a change leaves exactly these grants.
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {services}"),
        format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {services}"),
        format!("GRANT SELECT ON {s}._sqlx_migrations, {s}.log_identity TO {services}"),
        format!("GRANT SELECT, INSERT ON {s}.events, {s}.commands, {s}.event_seals TO {handler}"),
        format!("GRANT SELECT, UPDATE ON {s}.log_head TO {handler}"),
        format!("GRANT SELECT ON {s}.events, {s}.log_head TO {projector}"),
        format!("GRANT SELECT, INSERT, UPDATE ON {s}.projection_checkpoints TO {projector}"),
        format!(
            "GRANT SELECT ON {s}.events, {s}.log_head, {s}.projection_checkpoints TO {gateway}"
        ),
    ]);
    sql.extend(gateway_schema_sql(&gateway, &owner));
    sql.extend(read_model_sql(&projector, &gateway, &at.owner));
    sql
}

/// The gateway's own schema: every table in it, now and later, read and written by the gateway.
fn gateway_schema_sql(gateway: &str, owner: &str) -> Vec<String> {
    const TABLES: &str = "SELECT, INSERT, UPDATE, DELETE";
    const SEQUENCES: &str = "USAGE, SELECT, UPDATE";
    vec![
        "REVOKE CREATE ON SCHEMA gateway FROM PUBLIC".to_owned(),
        format!("GRANT USAGE ON SCHEMA gateway TO {gateway}"),
        format!("GRANT {TABLES} ON ALL TABLES IN SCHEMA gateway TO {gateway}"),
        format!("GRANT {SEQUENCES} ON ALL SEQUENCES IN SCHEMA gateway TO {gateway}"),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA gateway \
             GRANT {TABLES} ON TABLES TO {gateway}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA gateway \
             GRANT {SEQUENCES} ON SEQUENCES TO {gateway}"
        ),
    ]
}

/// The read models: the projector owns their schemas (a rebuild drops and renames them); what
/// it creates is readable by the gateway. The owner becomes a member of the projector's role,
/// so it may set those default privileges, hand over schemas an earlier version created as the
/// owner, and read the read models (the CLI).
fn read_model_sql(projector: &str, gateway: &str, owner_name: &str) -> Vec<String> {
    let owner = ident(owner_name);
    let owner_literal = format!("'{}'", owner_name.replace('\'', "''"));
    vec![
        format!(
            "DO $$ BEGIN IF NOT pg_has_role({owner_literal}, '{projector}', 'MEMBER') THEN \
             GRANT {projector} TO {owner}; END IF; \
             EXCEPTION WHEN unique_violation THEN NULL; END $$"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {projector} GRANT USAGE ON SCHEMAS TO {gateway}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {projector} GRANT SELECT ON TABLES TO {gateway}"
        ),
        format!(
            "DO $$ DECLARE s name; t name; BEGIN \
             FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rm\\_%' LOOP \
               IF (SELECT nspowner FROM pg_namespace WHERE nspname = s) <> '{projector}'::regrole THEN \
                 EXECUTE format('ALTER SCHEMA %I OWNER TO {projector}', s); \
                 FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                          WHERE n.nspname = s AND c.relkind IN ('r', 'p') LOOP \
                   EXECUTE format('ALTER TABLE %I.%I OWNER TO {projector}', s, t); \
                 END LOOP; \
               END IF; \
               EXECUTE format('GRANT USAGE ON SCHEMA %I TO {gateway}', s); \
               EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {gateway}', s); \
             END LOOP; END $$"
        ),
    ]
}

/// Creates the service roles when missing, sets their passwords, and grants their privileges
/// on the database `pool` reaches, in one transaction. Run it as the owner (with `CREATEROLE`),
/// or as a superuser, after `runledger migrate`.
pub async fn grant(
    pool: &PgPool,
    roles: &Roles,
    passwords: &RolePasswords,
) -> Result<Ownership, StoreError> {
    let at = ownership(pool).await?;
    let mut tx = pool.begin().await?;
    for statement in grant_sql(roles, &at) {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    let set = [
        (roles.handler(), &passwords.handler),
        (roles.projector(), &passwords.projector),
        (roles.gateway(), &passwords.gateway),
    ];
    for (role, password) in set {
        if let Some(password) = password {
            let verifier = scram::verifier(password.expose());
            sqlx::query(&format!("ALTER ROLE {role} PASSWORD '{verifier}'"))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_plain_identifiers() {
        assert!(Roles::new("runledger").is_ok());
        assert!(Roles::new("rl_test_01").is_ok());
        for bad in ["", "Runledger", "1st", "a-b", "x\"; DROP", &"a".repeat(41)] {
            assert!(Roles::new(bad).is_err(), "{bad:?}");
        }
        let roles = Roles::new("rl").unwrap();
        assert_eq!(roles.all(), ["rl_handler", "rl_projector", "rl_gateway"]);
    }

    #[test]
    fn no_service_role_gets_more_than_select_and_insert_on_the_log() {
        let roles = Roles::new("rl").unwrap();
        let at = Ownership {
            database: "db".into(),
            schema: "public".into(),
            owner: "owner".into(),
        };
        let sql = grant_sql(&roles, &at).join(";\n");
        for forbidden in ["TRUNCATE", "TRIGGER", "REFERENCES", "GRANT ALL"] {
            assert!(!sql.contains(forbidden), "{forbidden} in:\n{sql}");
        }
        assert!(!sql.contains("UPDATE ON \"public\".events"));
    }
}
