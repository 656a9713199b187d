//! The real binary: `runledger db grant`, then one `runledger serve` whose handler, projector
//! and gateway each connect as their own role (DATABASE_URL points nowhere, so nothing falls
//! back to the owner) takes a user, a test case and a run end to end.

use runledger_test_support::{TestDb, TestLab, TestRoles, eventually, free_port, runledger_binary};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use uuid::Uuid;

/// Nothing listens here: a component that fell back to DATABASE_URL would fail to start.
const NOWHERE: &str = "postgres://nobody@127.0.0.1:1/nowhere";

fn secret_file(contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("runledger-db-roles-{}", Uuid::new_v4()));
    std::fs::write(&path, format!("{contents}\n")).unwrap();
    path
}

fn runledger(db_url: &str) -> Command {
    let mut command = Command::new(runledger_binary());
    command
        .env("DATABASE_URL", db_url)
        .env_remove("DATABASE_URL_FILE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// `runledger db grant` as the owner, with a password for the gateway's role from a file.
async fn grant(db: &TestDb, roles: &TestRoles) {
    let password = secret_file("gateway-db-password");
    let output = runledger(&db.url)
        .args(["db", "grant", "--role-prefix", roles.roles.prefix()])
        .arg("--gateway-password-file")
        .arg(&password)
        .output()
        .await
        .unwrap();
    std::fs::remove_file(&password).unwrap();
    assert!(
        output.status.success(),
        "db grant: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(roles.roles.gateway())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
}

#[tokio::test]
async fn each_component_as_its_own_role_takes_a_run_end_to_end() {
    let lab = TestLab::create().await;
    let roles = TestRoles::unique();
    grant(&lab.db, &roles).await;
    let projector_url = secret_file(&lab.db.url_as(&roles.roles.projector()));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = runledger(NOWHERE)
        .args([
            "serve",
            "--dev",
            "--components",
            "handler,projector,gateway",
        ])
        .env(
            "RUNLEDGER_HANDLER_DATABASE_URL",
            lab.db.url_as(&roles.roles.handler()),
        )
        .env("RUNLEDGER_PROJECTOR_DATABASE_URL_FILE", &projector_url)
        .env(
            "RUNLEDGER_GATEWAY_DATABASE_URL",
            lab.db.url_as(&roles.roles.gateway()),
        )
        .env("NATS_URL", &lab.nats.url)
        .env("RUNLEDGER_NATS_PREFIX", lab.nats.names.prefix())
        .env("RUNLEDGER_HTTP_ADDR", &addr)
        .spawn()
        .unwrap();

    let client = lab.client();
    let admin = json!({"username": "ada", "role": "admin", "password": "ada-password-1"});
    assert!(
        client
            .send("register_user", "bootstrap", admin)
            .await
            .accepted
    );
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "suite", "command": "pytest"});
    assert!(
        client
            .send("define_test_case", "ada", test_case)
            .await
            .accepted
    );

    // The gateway reads the log to log in and writes its session table.
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/api/v1");
    let login = json!({"username": "ada", "password": "ada-password-1"});
    let token = eventually(
        Duration::from_secs(30),
        "a token from the gateway",
        || async {
            let answer = http
                .post(format!("{base}/tokens"))
                .json(&login)
                .send()
                .await
                .ok()?;
            let body: Value = answer.json().await.ok()?;
            body["token"].as_str().map(str::to_owned)
        },
    )
    .await;
    // The projector wrote the read model as its role; the gateway reads it.
    eventually(
        Duration::from_secs(30),
        "the test case in the read model",
        || async {
            let answer = http
                .get(format!("{base}/test-cases"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?;
            let body: Value = answer.json().await.ok()?;
            body.to_string()
                .contains(&test_case_id.to_string())
                .then_some(())
        },
    )
    .await;
    let started = http
        .post(format!("{base}/runs"))
        .bearer_auth(&token)
        .json(&json!({"test_case_id": test_case_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202, "{:?}", started.text().await);
    let run: Value = started.json().await.unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let shown = eventually(
        Duration::from_secs(30),
        "the run in the read model",
        || async {
            let answer = http
                .get(format!("{base}/runs/{run_id}"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?;
            (answer.status() == 200).then_some(answer.json::<Value>().await.ok()?)
        },
    )
    .await;
    assert_eq!(shown["run_id"], run_id.as_str());

    let owner: String = sqlx::query_scalar(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'rm_runs'",
    )
    .fetch_one(&lab.db.pool)
    .await
    .unwrap();
    assert_eq!(owner, roles.roles.projector());

    let pid = server.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_file(&projector_url).unwrap();
    lab.nats.cleanup().await;
    roles.cleanup(lab.db).await;
}

#[tokio::test]
async fn a_least_privilege_service_refuses_a_database_that_is_behind() {
    let db = TestDb::create().await;
    let roles = TestRoles::grant(&db).await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let output = runledger(NOWHERE)
        .args(["serve", "--components", "gateway"])
        .env(
            "RUNLEDGER_GATEWAY_DATABASE_URL",
            db.url_as(&roles.roles.gateway()),
        )
        .env("RUNLEDGER_HTTP_ADDR", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("runledger migrate"), "{stderr}");
    assert!(
        stderr.contains("RUNLEDGER_GATEWAY_DATABASE_URL"),
        "{stderr}"
    );
    roles.cleanup(db).await;
}
