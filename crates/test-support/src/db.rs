//! A fresh, migrated database per test.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A database of its own for one test; `cleanup` drops it.
#[derive(Debug)]
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// URL of the test database.
    pub url: String,
    /// A pool on it (migrated).
    pub pool: PgPool,
    admin_url: String,
}

pub(crate) fn admin_url() -> String {
    std::env::var("RUNLEDGER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    /// Creates and migrates `rl_test_<random>` on the shared server.
    pub async fn create() -> Self {
        Self::create_in(&admin_url()).await
    }

    /// Creates and migrates `rl_test_<random>` on the server of `admin_url` (a superuser's
    /// connection, as `RUNLEDGER_TEST_DATABASE_URL` is).
    pub async fn create_in(admin_url: &str) -> Self {
        let admin_url = admin_url.to_owned();
        let name = format!("rl_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .expect("connect to the admin database (is Postgres running?)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let (address, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
        let (base, _) = address.rsplit_once('/').expect("URL has a database");
        let url = match query {
            "" => format!("{base}/{name}"),
            query => format!("{base}/{name}?{query}"),
        };
        let pool = runledger_store::connect(&url, 16)
            .await
            .expect("connect test db");
        runledger_store::migrate(&pool).await.expect("migrate");
        Self {
            name,
            url,
            pool,
            admin_url,
        }
    }

    /// The URL of this database for another role (the test cluster trusts local connections,
    /// so no password is needed).
    pub fn url_as(&self, role: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("URL has a scheme");
        let (authority, path) = rest.split_once('/').expect("URL has a database");
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        format!("{scheme}://{role}@{host}/{path}")
    }

    /// Closes the pool and drops the database.
    pub async fn cleanup(self) {
        self.pool.close().await;
        if let Ok(admin) = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.admin_url)
            .await
        {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::query(&sql).execute(&admin).await;
            admin.close().await;
        }
    }
}
