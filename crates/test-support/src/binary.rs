//! The real `runledger` binary, for tests that run it as its own process (a CLI, or a service
//! killed with `kill -9`).

use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;

/// The `runledger` binary: `$RUNLEDGER_BIN`, else built (or found up to date) by cargo, in the
/// profile the tests run in. A test package cannot name another package's binary, so this asks
/// cargo for it once per test process.
pub fn runledger_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("RUNLEDGER_BIN") {
            return path.into();
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .args(["build", "-p", "runledger-app", "--bin", "runledger"])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let output = build.output().expect("run cargo build");
        assert!(
            output.status.success(),
            "cargo build -p runledger-app failed"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["target"]["name"] == "runledger")
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the runledger executable")
    })
}
