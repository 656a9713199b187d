//! A real OpenSSH `sshd` on a free loopback port, for the executor's SSH tests.
//!
//! Each [`TestSshd`] owns a temporary directory with a fresh ed25519 host key, fresh ed25519 and
//! RSA user keys (their `authorized_keys` lives in the same directory, named by the config, so the
//! user's `~/.ssh` is never touched) and its own `sshd_config`; the sshd is killed on `Drop`. All
//! instances log in as one throw-away system user ([`TEST_USER`]), created once per machine with
//! a random password that is kept in a root-only file, so parallel tests and test processes agree.
//! Needs root and `/usr/sbin/sshd` (`scripts/services.sh`: `ensure_sshd` installs it).

use crate::free_port;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The system user every test sshd lets in.
pub const TEST_USER: &str = "rltest";
const SSHD: &str = "/usr/sbin/sshd";
const STATE_DIR: &str = "/var/lib/runledger-tests";

/// A running `sshd` on `127.0.0.1`, stopped (and its directory removed) on `Drop`.
pub struct TestSshd {
    /// Always `127.0.0.1`.
    pub host: String,
    /// The loopback port it listens on.
    pub port: u16,
    /// The user to log in as ([`TEST_USER`]).
    pub username: String,
    /// That user's password.
    pub password: String,
    /// Path of the ed25519 user key (OpenSSH format, no passphrase).
    pub ed25519_key_path: PathBuf,
    /// Path of the RSA user key (OpenSSH format, no passphrase).
    pub rsa_key_path: PathBuf,
    /// The ed25519 user key, as the OpenSSH PEM text.
    pub ed25519_key: String,
    /// The RSA user key, as the OpenSSH PEM text.
    pub rsa_key: String,
    /// The host key's fingerprint, `SHA256:...` as `ssh-keygen -l` prints it.
    pub host_key_fingerprint: String,
    dir: PathBuf,
    child: Child,
}

impl TestSshd {
    /// Starts a fresh sshd; panics with a hint when sshd is not installed or does not come up.
    pub fn start() -> TestSshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install it with `source scripts/services.sh && ensure_sshd` \
             (Debian's openssh-server)"
        );
        let password = test_user_password().to_owned();
        let dir = make_dir();
        let keys = Keys::generate(&dir);
        fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let (port, child) = spawn_listening(&dir);
        TestSshd {
            host: "127.0.0.1".to_owned(),
            port,
            username: TEST_USER.to_owned(),
            password,
            ed25519_key: read(&keys.ed25519),
            rsa_key: read(&keys.rsa),
            ed25519_key_path: keys.ed25519,
            rsa_key_path: keys.rsa,
            host_key_fingerprint: keys.host_fingerprint,
            dir,
            child,
        }
    }

    /// The directory holding this instance's keys, config and `sshd.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file the sshd logs to (`LogLevel VERBOSE`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// What the sshd has logged so far (useful in assertion messages).
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// The log's lines that show a user authentication attempt: any line naming the test user
    /// (`Accepted password for rltest`, `Failed publickey for rltest`, `Postponed ...`) or a
    /// `userauth` request. Empty means no credential reached this sshd.
    pub fn auth_attempts(&self) -> Vec<String> {
        auth_lines(&self.log())
    }

    /// How many client connections have ended so far (`LogLevel VERBOSE` logs each one's end,
    /// authenticated or not): wait for it before asserting that something was not logged.
    pub fn connections_closed(&self) -> usize {
        self.log()
            .lines()
            .filter(|line| {
                line.contains("Disconnected from")
                    || line.contains("Connection closed by")
                    || line.contains("Connection reset by")
            })
            .count()
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `sshd.log` in `dir`, as far as it is written.
fn read_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
}

/// The lines of an sshd log that show a user authentication attempt (see
/// [`TestSshd::auth_attempts`]).
pub fn auth_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| {
            line.contains(&format!(" {TEST_USER} "))
                || line.ends_with(&format!(" {TEST_USER}"))
                || line.contains("userauth")
                || line.contains("Accepted ")
                || line.contains("Failed ")
        })
        .map(str::to_owned)
        .collect()
}

/// Creates the test user and its password once per machine (under a file lock), then reads it.
fn test_user_password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| {
        fs::create_dir_all(STATE_DIR).expect("create the test state dir");
        let lock = fs::File::create(Path::new(STATE_DIR).join("user.lock")).expect("lock file");
        lock.lock().expect("lock the test user set-up");
        let file = Path::new(STATE_DIR).join(format!("{TEST_USER}.password"));
        let user_exists = run_status("id", &["-u", TEST_USER]);
        if let (true, Ok(password)) = (user_exists, fs::read_to_string(&file)) {
            return password.trim().to_owned();
        }
        if !user_exists {
            run(
                "useradd",
                &["--create-home", "--shell", "/bin/sh", TEST_USER],
            );
        }
        let password = uuid::Uuid::new_v4().simple().to_string();
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("run chpasswd");
        let mut stdin = chpasswd.stdin.take().expect("chpasswd stdin");
        writeln!(stdin, "{TEST_USER}:{password}").expect("write to chpasswd");
        drop(stdin);
        assert!(
            chpasswd.wait().expect("chpasswd").success(),
            "chpasswd failed"
        );
        fs::write(&file, &password).expect("store the test password");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod password");
        password
    })
}

/// The key files of one instance.
struct Keys {
    ed25519: PathBuf,
    rsa: PathBuf,
    host_fingerprint: String,
}

impl Keys {
    fn generate(dir: &Path) -> Keys {
        let host = keygen(dir, "host_ed25519", &["-t", "ed25519"]);
        let ed25519 = keygen(dir, "user_ed25519", &["-t", "ed25519"]);
        let rsa = keygen(dir, "user_rsa", &["-t", "rsa", "-b", "2048"]);
        let authorized = [&ed25519, &rsa]
            .iter()
            .map(|key| read(&key.with_extension("pub")))
            .collect::<String>();
        let authorized_path = dir.join("authorized_keys");
        fs::write(&authorized_path, authorized).expect("write authorized_keys");
        fs::set_permissions(&authorized_path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let listing = output(
            "ssh-keygen",
            &["-l", "-E", "sha256", "-f", &path_str(&host)],
        );
        let host_fingerprint = listing
            .split_whitespace()
            .nth(1)
            .expect("ssh-keygen -l prints a fingerprint")
            .to_owned();
        Keys {
            ed25519,
            rsa,
            host_fingerprint,
        }
    }
}

/// Generates a key without a passphrase into `dir/name` (and `name.pub`).
fn keygen(dir: &Path, name: &str, kind: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = kind.to_vec();
    let path_text = path_str(&path);
    args.extend(["-q", "-N", "", "-C", name, "-f", &path_text]);
    run("ssh-keygen", &args);
    path
}

/// Starts sshd on a port that was free a moment ago, retrying when another process took it.
fn spawn_listening(dir: &Path) -> (u16, Child) {
    for _ in 0..5 {
        let port = free_port();
        let config = dir.join("sshd_config");
        fs::write(&config, sshd_config(dir, port)).expect("write sshd_config");
        let log = fs::File::create(dir.join("sshd.log")).expect("create sshd.log");
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f", &path_str(&config)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        if wait_listening(&mut child, port) {
            return (port, child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
    panic!("sshd did not start; its log:\n{log}");
}

/// True once `port` accepts connections; false when sshd exits or 10 s pass.
fn wait_listening(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let d = path_str(dir);
    format!(
        "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication yes\n\
         PubkeyAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\nStrictModes no\n\
         UseDNS no\nMaxSessions 200\nMaxStartups 200:30:400\nMaxAuthTries 10\n\
         AllowUsers {TEST_USER}\nSubsystem sftp internal-sftp\nPrintMotd no\nLogLevel VERBOSE\n"
    )
}

/// A fresh directory that the test user can read (it reads `authorized_keys` from it).
fn make_dir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("runledger-sshd-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the sshd dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod the sshd dir");
    dir
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "{program} {args:?} failed: {status:?}"
    );
}

fn run_status(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
