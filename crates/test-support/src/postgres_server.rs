//! A Postgres cluster of a test's own (`initdb` in a temporary directory, a free port), for
//! tests that crash the database under a running service: the shared server must never be
//! stopped. Stopped at once and removed on drop, even when the test panics.
//!
//! The server binaries come from `$RUNLEDGER_TEST_PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's layout), else `PATH`. Postgres refuses to run
//! as root, so as root every server command runs as the `postgres` user (`runuser`), which
//! then owns the directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A running Postgres cluster that trusts local connections.
pub struct TestPostgres {
    dir: PathBuf,
    bin: PathBuf,
    /// The port it listens on (127.0.0.1 only).
    pub port: u16,
}

impl TestPostgres {
    /// Creates a cluster (`initdb -A trust`) in a fresh temporary directory and starts it.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("rl-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let server = Self {
            bin: bin_dir(),
            port: crate::free_port(),
            dir,
        };
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .expect("chown on PATH");
            assert!(
                status.success(),
                "chown the cluster's directory to postgres"
            );
        }
        let mut initdb = server.command("initdb");
        initdb
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(server.data());
        succeed(initdb, "initdb");
        server.start_again();
        server
    }

    /// The superuser's URL of the `postgres` database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m immediate`: every backend is killed without a checkpoint, as in a crash;
    /// the next start runs crash recovery.
    pub fn crash(&self) {
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-m", "immediate", "-D"])
            .arg(self.data());
        succeed(stop, "pg_ctl stop -m immediate");
    }

    /// Starts the (stopped) cluster and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let mut start = self.command("pg_ctl");
        start
            .args(["start", "-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.join("postgres.log"))
            .arg("-D")
            .arg(self.data());
        succeed(start, "pg_ctl start");
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server binary, run as `postgres` when this process is root.
    fn command(&self, program: &str) -> Command {
        let binary = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        };
        command.stdin(Stdio::null());
        command
    }
}

/// Runs `command` and fails the test, with its output, if it fails.
fn succeed(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("run {what}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    // The effective user id, without a libc dependency: /proc/self/status names it.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|id| id == "0"))
        })
        .unwrap_or(false)
}

/// Where `initdb` and `pg_ctl` are.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUNLEDGER_TEST_PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        // Found on PATH by the shell's lookup: an empty directory joins to the bare name.
        None => PathBuf::new(),
    }
}
