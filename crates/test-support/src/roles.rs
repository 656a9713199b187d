//! The least-privilege service roles for one test: role names are cluster-wide while each test
//! has a database of its own, so every test grants roles under a prefix of its own and drops
//! them when it ends.

use crate::db::TestDb;
use runledger_store::roles::{RolePasswords, Roles};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// `runledger_store::roles` granted on a test's database under a unique prefix.
#[derive(Debug)]
pub struct TestRoles {
    /// The role names.
    pub roles: Roles,
    admin_url: String,
}

impl TestRoles {
    /// A fresh prefix (`rlt_<hex>`), with nothing granted yet (for tests of the command).
    pub fn unique() -> Self {
        let prefix = format!("rlt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Self {
            roles: Roles::new(&prefix).expect("a valid prefix"),
            admin_url: crate::db::admin_url(),
        }
    }

    /// Creates the roles and grants them on `db` (as its owner, the test's superuser).
    pub async fn grant(db: &TestDb) -> Self {
        let roles = Self::unique();
        runledger_store::roles::grant(&db.pool, &roles.roles, &RolePasswords::default())
            .await
            .expect("grant the service roles");
        roles
    }

    /// A pool on `db` connected as `role` (one of [`Roles::all`]).
    pub async fn pool(&self, db: &TestDb, role: &str) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&db.url_as(role))
            .await
            .expect("connect as a service role")
    }

    /// Drops `db`, then the roles (a role with privileges in a database cannot be dropped).
    pub async fn cleanup(self, db: TestDb) {
        db.cleanup().await;
        if let Ok(admin) = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.admin_url)
            .await
        {
            let sql = format!("DROP ROLE IF EXISTS {}", self.roles.all().join(", "));
            let _ = sqlx::query(&sql).execute(&admin).await;
            admin.close().await;
        }
    }
}
