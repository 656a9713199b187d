//! The served OpenAPI document says exactly what the API does: schemathesis (from PyPI), with
//! every check, against a gateway with an admin's token, finds no failure.
//!
//! No executor runs here, so the machines, venvs and Jenkins servers schemathesis invents are
//! recorded but never contacted. Operations that would end the token the run uses are left out
//! (`DELETE /tokens/current`), as are the user operations, which could end it by chance.
//! `scripts/test.sh` installs schemathesis (`ensure_python_tools`); `ST_BIN` names another.
//! `tests/schemathesis.toml` holds the one exception (opaque cursors) and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use runledger_test_support::TestLab;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// schemathesis' `st`: `ST_BIN`, else pip's user install, else the `PATH`'s.
fn st_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ST_BIN") {
        return PathBuf::from(path);
    }
    let user_install = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".local/bin/st"))
        .filter(|path| path.exists());
    user_install.unwrap_or_else(|| PathBuf::from("st"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_failure_in_the_served_document() {
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let projector = lab.start_projector(1000).await;
    common::register_admin(&lab).await;
    let shutdown = CancellationToken::new();
    let (addr, _, _) = common::serve_gateway_with(&lab, &shutdown, |settings| {
        // schemathesis logs in with made-up passwords: answer those at once.
        settings.login_limits.base_delay = Duration::from_millis(1);
    })
    .await;
    let token = common::admin_token(addr).await;

    let run = tokio::process::Command::new(st_binary())
        .arg("--config-file")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/schemathesis.toml"
        ))
        .args([
            "run",
            &format!("http://{addr}/api/v1/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "all",
            "--exclude-path",
            "/api/v1/tokens/current",
            "--exclude-path-regex",
            "^/api/v1/users/",
            "--seed",
            "1",
            "--generation-deterministic",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--request-timeout",
            "15",
            "--no-color",
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("schemathesis finished within 10 minutes")
        .expect("schemathesis runs (scripts/services.sh ensure_python_tools installs it)");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    shutdown.cancel();
    projector.stop().await;
    handler.stop().await;
    lab.cleanup().await;
}
