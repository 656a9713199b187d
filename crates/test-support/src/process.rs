//! The real `runledger` binary aimed at one test's services, and what tests need around it: a
//! free port for its gateway, and waiting until that gateway answers.

use crate::nats::TestNats;
use crate::{TestLab, eventually};
use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The credential key (base64 of 32 bytes of 42) every test process uses: the one
/// [`TestLab::keyring`] holds, so a `serve` process and an in-process handler agree.
pub const TEST_SECRET_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// `binary` (the `runledger` of the package under test, or [`crate::runledger_binary`]) with
/// `DATABASE_URL`, `NATS_URL`, the test's NATS prefix and [`TEST_SECRET_KEY`] set, stdin closed,
/// `RUST_LOG=warn`, and killed when dropped. Tests add the arguments and anything else.
pub fn runledger_command(
    binary: impl AsRef<OsStr>,
    database_url: &str,
    nats: &TestNats,
) -> Command {
    let mut command = Command::new(binary);
    command
        .env("DATABASE_URL", database_url)
        .env("NATS_URL", &nats.url)
        .env("RUNLEDGER_NATS_PREFIX", nats.names.prefix())
        .env("RUNLEDGER_SECRET_KEY", TEST_SECRET_KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

impl TestLab {
    /// [`runledger_command`] on this lab's database and NATS prefix.
    pub fn runledger(&self, binary: impl AsRef<OsStr>) -> Command {
        runledger_command(binary, &self.db.url, &self.nats)
    }
}

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Waits until the gateway at `base` (`http://127.0.0.1:<port>`) answers `/healthz`.
pub async fn wait_until_healthy(base: &str, timeout: Duration) {
    let health = format!("{base}/healthz");
    eventually(timeout, "the gateway to answer /healthz", || async {
        let response = reqwest::get(&health).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}
