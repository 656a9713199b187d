//! A nats-server of a test's own, with JetStream: with TLS (a throw-away CA and a certificate for
//! 127.0.0.1), for tests of credentials, TLS and subject permissions that the shared server
//! cannot show, or plain, for tests that kill the server and start it again on the same port and
//! store. Stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server in a temporary directory.
pub struct TestNatsServer {
    dir: PathBuf,
    /// `tls://127.0.0.1:<port>` (or `nats://` for a plain server).
    pub url: String,
    port: u16,
    server: Child,
    /// How it was started, to start it again.
    start: Vec<String>,
    env: Vec<(String, String)>,
}

impl TestNatsServer {
    /// Starts a server whose configuration ends with `tail` (an `authorization` block, an
    /// `include` of one of `files`), with `files` written beside the configuration and `env` in
    /// the server's environment (the configuration may refer to it as `$NAME`).
    pub fn start_tls(tail: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("rl-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        certificates(&dir);
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).expect("write a configuration file");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{store}\" }}\n\
             tls {{ cert_file: \"{dir}/server.pem\", key_file: \"{dir}/server.key\" }}\n{tail}\n",
            store = dir.join("js").display(),
            dir = dir.display(),
        );
        std::fs::write(dir.join("nats.conf"), config).expect("write nats.conf");
        let start = vec!["-c".to_owned(), dir.join("nats.conf").display().to_string()];
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let server = spawn(&start, &env, port);
        Self {
            url: format!("tls://127.0.0.1:{port}"),
            dir,
            port,
            server,
            start,
            env,
        }
    }

    /// Starts a plain server (`-js -sd <dir>/js`, no TLS, no authorisation) on a free port. Its
    /// JetStream store outlives [`kill`](Self::kill), so a [`restart`](Self::restart) finds the
    /// streams, their messages and the durable consumers again.
    pub fn start_jetstream() -> Self {
        let dir = std::env::temp_dir().join(format!("rl-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let port = crate::free_port();
        let start = vec![
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
            "-js".to_owned(),
            "-sd".to_owned(),
            dir.join("js").display().to_string(),
            "-l".to_owned(),
            dir.join("nats.log").display().to_string(),
        ];
        let server = spawn(&start, &[], port);
        Self {
            url: format!("nats://127.0.0.1:{port}"),
            dir,
            port,
            server,
            start,
            env: Vec::new(),
        }
    }

    /// `kill -9`: the server dies at once, with no chance to flush or say goodbye to clients.
    pub fn kill(&mut self) {
        self.server.kill().expect("kill nats-server");
        self.server.wait().expect("reap nats-server");
    }

    /// Starts the server again, as it was started, and waits until it listens.
    pub fn restart(&mut self) {
        self.server = spawn(&self.start, &self.env, self.port);
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

impl Drop for TestNatsServer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `nats-server` with `args` and `env` and waits until it listens on `port`.
fn spawn(args: &[String], env: &[(String, String)], port: u16) -> Child {
    let server = Command::new(nats_server())
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server on PATH");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// `nats-server` on PATH, else Debian's `/usr/sbin/nats-server` (not on every user's PATH).
fn nats_server() -> &'static str {
    const DEBIAN: &str = "/usr/sbin/nats-server";
    if Path::new(DEBIAN).exists() {
        DEBIAN
    } else {
        "nats-server"
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost it signed, made with `openssl`.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl on PATH");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = [
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    ];
    openssl(&[&["req", "-x509"][..], &ec, &ca].concat());
    let csr = [
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ];
    openssl(&[&["req"][..], &ec, &csr].concat());
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write san.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}
