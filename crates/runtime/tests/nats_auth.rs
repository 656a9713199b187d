//! NATS credentials and TLS through the `NATS_*` settings, against a nats-server of the test's
//! own that requires TLS and a user's password: the handler and a caller each connect as their
//! own user and a command goes through; a wrong password or a client that does not verify the
//! server's certificate gets nothing through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_test_support::{TestDb, eventually};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;
use tokio::process::Command;
use uuid::Uuid;

/// A nats-server with JetStream, TLS and two users, in a temporary directory.
struct SecureNats {
    dir: PathBuf,
    url: String,
    server: Child,
}

impl SecureNats {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("rl-nats-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        certificates(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            r#"listen: "127.0.0.1:{port}"
jetstream {{ store_dir: "{store}" }}
tls {{ cert_file: "{dir}/server.pem", key_file: "{dir}/server.key" }}
authorization {{ users: [
  {{ user: handler, password: "handler-pw" }},
  {{ user: caller, password: "caller-pw" }}
] }}
"#,
            store = dir.join("js").display(),
            dir = dir.display(),
        );
        std::fs::write(dir.join("nats.conf"), config).unwrap();
        let server = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(dir.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SecureNats {
            url: format!("tls://127.0.0.1:{port}"),
            dir,
            server,
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throw-away CA and a server certificate for 127.0.0.1 it signed.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
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
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=runledger test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
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

/// `runledger` against `db` and `nats` as NATS user `user`, verifying the server with `ca`.
fn runledger(
    db: &TestDb,
    nats: &SecureNats,
    user: &str,
    password: &str,
    ca: Option<&Path>,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runledger"));
    command
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", &nats.url)
        .env("RUNLEDGER_NATS_PREFIX", "secure")
        .env(
            "RUNLEDGER_SECRET_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("NATS_USER", user)
        .env("NATS_PASSWORD", password)
        .env_remove("NATS_CA")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(ca) = ca {
        command.env("NATS_CA", ca);
    }
    command
}

#[tokio::test]
async fn components_connect_with_their_own_credentials_over_tls() {
    let db = TestDb::create().await;
    let nats = SecureNats::start();
    let ca = nats.ca();
    let mut handler = runledger(&db, &nats, "handler", "handler-pw", Some(&ca))
        .args(["serve", "--components", "handler"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let payload = r#"{"username":"ada","role":"admin","password":"correct-horse"}"#;
    let send = |user: &'static str, password: &'static str, ca: Option<PathBuf>| {
        let mut command = runledger(&db, &nats, user, password, ca.as_deref());
        command.args(["send", "register_user", payload, "--timeout", "3s"]);
        command
    };
    let output = eventually(Duration::from_secs(60), "the handler to answer", || async {
        let output = send("caller", "caller-pw", Some(ca.clone()))
            .output()
            .await
            .unwrap();
        output.status.success().then_some(output)
    })
    .await;
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outcome["accepted"], true, "{outcome}");

    // A wrong password, or no CA to verify the server with, gets no answer at all.
    let wrong = send("caller", "guess", Some(ca.clone()))
        .output()
        .await
        .unwrap();
    assert!(!wrong.status.success(), "a wrong password is refused");
    let unverified = send("caller", "caller-pw", None).output().await.unwrap();
    assert!(
        !unverified.status.success(),
        "the server's certificate must be verified"
    );

    handler.start_kill().unwrap();
    handler.wait().await.unwrap();
    db.cleanup().await;
}
