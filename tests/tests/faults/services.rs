//! The fault suite's world: a Postgres cluster and a nats-server of its own (so that it may crash
//! them), two `runledger serve` processes, and a steady stream of `start_run` commands. Every
//! child process is killed when its owner is dropped, so a failing test leaves nothing behind.

use runledger_test_support::{
    TestLab, TestNatsServer, TestPostgres, free_port, runledger_binary, wait_until_healthy,
};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Child;

/// Seconds an executor may go without a heartbeat (short, so a killed executor's runs end soon;
/// long enough that a NATS outage of a few seconds does not expire a living executor).
pub const EXECUTOR_LEASE_S: &str = "8";

/// The two servers the test may crash, and a lab (database, NATS prefix) on them.
pub struct World {
    pub postgres: TestPostgres,
    pub nats: TestNatsServer,
    pub lab: TestLab,
    /// HOME of the `serve` processes: venvs and run directories go under it.
    pub home: TempDir,
}

impl World {
    pub async fn start() -> Self {
        let (postgres, nats) = tokio::task::spawn_blocking(|| {
            (TestPostgres::start(), TestNatsServer::start_jetstream())
        })
        .await
        .expect("start Postgres and NATS");
        let lab = TestLab::create_on(&postgres.admin_url(), &nats.url).await;
        Self {
            postgres,
            nats,
            lab,
            home: TempDir::new("rl-faults-home"),
        }
    }
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `runledger serve --dev` process, named (its executor's name, stable across restarts).
pub struct Serve {
    pub name: &'static str,
    components: &'static str,
    http_port: Option<u16>,
    pub child: Child,
    log: PathBuf,
}

impl Serve {
    /// Starts `serve --components <components>`; with the gateway among them, waits until it
    /// answers `/healthz`.
    pub async fn start(world: &World, name: &'static str, components: &'static str) -> Self {
        let http_port = components.contains("gateway").then(free_port);
        // RUNLEDGER_FAULTS_LOGS names a directory to keep the processes' logs in, for debugging.
        let logs =
            std::env::var_os("RUNLEDGER_FAULTS_LOGS").map_or(world.home.0.clone(), PathBuf::from);
        let log = logs.join(format!("{name}.log"));
        let child = spawn(world, name, components, http_port, &log);
        let serve = Self {
            name,
            components,
            http_port,
            child,
            log,
        };
        if let Some(base) = serve.base() {
            wait_until_healthy(&base, Duration::from_secs(60)).await;
        }
        serve
    }

    /// The gateway's address, when it runs one.
    pub fn base(&self) -> Option<String> {
        self.http_port
            .map(|port| format!("http://127.0.0.1:{port}"))
    }

    /// `kill -9`, then the same process started again (same name, same components).
    pub async fn kill_and_restart(&mut self, world: &World) {
        self.child.start_kill().expect("kill -9 a serve process");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("a killed process is reaped at once");
        let port = self.http_port;
        self.child = spawn(world, self.name, self.components, port, &self.log);
    }

    /// Panics, with the end of its log, unless the process is still the one first started.
    pub fn assert_running(&mut self, when: &str) {
        let status = self.child.try_wait().expect("try_wait");
        assert!(
            status.is_none(),
            "`serve` {} exited ({status:?}) {when}; the end of its log:\n{}",
            self.name,
            self.log_tail()
        );
    }

    /// SIGTERM, and its exit status within 60 s.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("`serve` {} did not stop within 60 s", self.name))
            .expect("wait")
    }

    /// The last lines the process logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn spawn(world: &World, name: &str, components: &str, http_port: Option<u16>, log: &Path) -> Child {
    let log = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the serve log");
    let mut command = world.lab.runledger(runledger_binary());
    command
        .args(["serve", "--components", components, "--dev"])
        .env("RUNLEDGER_EXECUTOR_NAME", name)
        .env("RUNLEDGER_EXECUTOR_LEASE_S", EXECUTOR_LEASE_S)
        // The steady process drives one run at a time, so that the victim holds most of them
        // and is found mid-run whenever the test looks, however its executor is scheduled.
        .env(
            "RUNLEDGER_EXECUTOR_MAX_RUNS",
            if name == "steady" { "1" } else { "8" },
        )
        .env("HOME", &world.home.0)
        // RUNLEDGER_FAULTS_LOG (a RUST_LOG filter) makes the processes say more, for debugging.
        .env(
            "RUST_LOG",
            std::env::var("RUNLEDGER_FAULTS_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::from(log.try_clone().expect("clone the log file")))
        .stderr(Stdio::from(log));
    if let Some(port) = http_port {
        command.env("RUNLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"));
    }
    command.spawn().expect("start `runledger serve`")
}
