//! The SSH client against a real OpenSSH sshd (the test-support fixture) on a loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use runledger_executor::ssh::{
    AcceptFirstKey, Output, RemoteExit, SshAuth, SshConnection, SshError, SshOptions, SshPool,
    SshTarget, connect,
};
use runledger_test_support::TestSshd;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn target(sshd: &TestSshd, auth: SshAuth) -> SshTarget {
    SshTarget {
        host: sshd.host.clone(),
        port: sshd.port,
        username: sshd.username.clone(),
        auth,
        pinned_host_key: None,
    }
}

fn password(sshd: &TestSshd) -> SshTarget {
    target(sshd, SshAuth::Password(sshd.password.clone()))
}

async fn connected(target: &SshTarget) -> SshConnection {
    connect(target, &SshOptions::default(), &AcceptFirstKey)
        .await
        .unwrap()
        .0
}

/// Runs `command`, returning its output chunks in arrival order and how it ended.
async fn run(connection: &SshConnection, command: &str) -> (Vec<Output>, RemoteExit) {
    let (sink, mut source) = mpsc::channel(1024);
    let exit = connection.exec(command, &sink).await.unwrap();
    drop(sink);
    let mut chunks = Vec::new();
    while let Some(chunk) = source.recv().await {
        chunks.push(chunk);
    }
    (chunks, exit)
}

async fn stdout_of(connection: &SshConnection, command: &str) -> String {
    let (chunks, exit) = run(connection, command).await;
    assert_eq!(exit, RemoteExit::Code(0), "{command}: {chunks:?}");
    chunks
        .iter()
        .map(|chunk| match chunk {
            Output::Stdout(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Output::Stderr(_) => String::new(),
        })
        .collect()
}

#[tokio::test]
async fn password_auth_runs_a_command() {
    let sshd = TestSshd::start();
    let connection = connected(&password(&sshd)).await;
    assert_eq!(stdout_of(&connection, "whoami").await.trim(), sshd.username);
}

#[tokio::test]
async fn ed25519_and_rsa_keys_authenticate() {
    let sshd = TestSshd::start();
    for key in [&sshd.ed25519_key, &sshd.rsa_key] {
        let connection = connected(&target(&sshd, SshAuth::PrivateKey(key.clone()))).await;
        assert_eq!(stdout_of(&connection, "echo ok").await, "ok\n");
    }
}

#[tokio::test]
async fn a_wrong_password_is_auth_failed() {
    let sshd = TestSshd::start();
    let wrong = target(&sshd, SshAuth::Password("not-the-password".into()));
    let error = connect(&wrong, &SshOptions::default(), &AcceptFirstKey)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, SshError::AuthFailed { .. }), "{error:?}");
}

#[tokio::test]
async fn a_pinned_key_connects_and_an_unpinned_one_is_returned_for_pinning() {
    let sshd = TestSshd::start();
    let mut target = password(&sshd);
    let (_, seen) = connect(&target, &SshOptions::default(), &AcceptFirstKey)
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some(sshd.host_key_fingerprint.as_str()));
    assert!(sshd.host_key_fingerprint.starts_with("SHA256:"));

    target.pinned_host_key = seen;
    let (connection, seen) = connect(&target, &SshOptions::default(), &AcceptFirstKey)
        .await
        .unwrap();
    assert_eq!(seen, None);
    assert_eq!(connection.host_key_fingerprint(), sshd.host_key_fingerprint);
}

#[tokio::test]
async fn a_mismatched_pin_is_refused_naming_both_keys() {
    let sshd = TestSshd::start();
    let pin = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned();
    let mut target = password(&sshd);
    target.pinned_host_key = Some(pin.clone());
    let error = connect(&target, &SshOptions::default(), &AcceptFirstKey)
        .await
        .err()
        .unwrap();
    match &error {
        SshError::HostKeyMismatch {
            expected,
            presented,
        } => {
            assert_eq!(*expected, pin);
            assert_eq!(*presented, sshd.host_key_fingerprint);
        }
        other => panic!("expected a host key mismatch, got {other:?}"),
    }
    assert!(error.to_string().contains(&sshd.host_key_fingerprint));
}

#[tokio::test]
async fn an_unreachable_port_fails_fast() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = SshTarget {
        host: "127.0.0.1".into(),
        port,
        username: "nobody".into(),
        auth: SshAuth::Password("x".into()),
        pinned_host_key: None,
    };
    let options = SshOptions {
        connect_timeout: Duration::from_secs(2),
        ..SshOptions::default()
    };
    let started = Instant::now();
    let error = connect(&target, &options, &AcceptFirstKey)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            error,
            SshError::Unreachable { .. } | SshError::Timeout { .. }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn exec_streams_stdout_and_stderr_in_order_and_returns_the_exit_code() {
    let sshd = TestSshd::start();
    let connection = connected(&password(&sshd)).await;
    // stdout and stderr are separate pipes on the server: the pauses make their order observable.
    let command = "printf 'a\\n'; sleep 0.2; printf 'b\\n' >&2; sleep 0.2; printf 'c\\n'; exit 3";
    let (chunks, exit) = run(&connection, command).await;
    let expected = [
        Output::Stdout("a\n".into()),
        Output::Stderr("b\n".into()),
        Output::Stdout("c\n".into()),
    ];
    assert_eq!(chunks, expected);
    assert_eq!(exit, RemoteExit::Code(3));
}

#[tokio::test]
async fn a_killed_command_reports_its_signal_and_cancel_closes_the_channel() {
    let sshd = TestSshd::start();
    let connection = connected(&password(&sshd)).await;
    let (_, exit) = run(&connection, "kill -TERM $$").await;
    assert!(
        matches!(&exit, RemoteExit::Signal { name, .. } if name == "TERM"),
        "{exit:?}"
    );

    let (sink, _source) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let result = connection
        .exec_cancellable("sleep 30", &sink, &cancel)
        .await;
    assert!(matches!(result, Err(SshError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        stdout_of(&connection, "echo still-usable").await,
        "still-usable\n"
    );
}

#[tokio::test]
async fn upload_creates_parent_directories() {
    let sshd = TestSshd::start();
    let connection = connected(&password(&sshd)).await;
    let dir = format!("rl-upload-{}", uuid::Uuid::new_v4().simple());
    let files = [
        (format!("{dir}/sub/deeper/a.txt"), b"hello\n".to_vec()),
        (format!("{dir}/b.txt"), b"world\n".to_vec()),
    ];
    connection.upload(&files).await.unwrap();
    let cat = format!("cat {dir}/sub/deeper/a.txt {dir}/b.txt; rm -rf {dir}");
    assert_eq!(stdout_of(&connection, &cat).await, "hello\nworld\n");
}

#[tokio::test]
async fn download_round_trips_and_reports_missing_and_too_large_files() {
    let sshd = TestSshd::start();
    let connection = connected(&password(&sshd)).await;
    let dir = format!("rl-download-{}", uuid::Uuid::new_v4().simple());
    let report = format!("{dir}/reports/junit.xml");
    let contents = b"<testsuite tests=\"1\"/>\n".to_vec();
    connection.upload(&[(&report, &contents)]).await.unwrap();

    let limit = contents.len() as u64;
    let fetched = connection.download(&report, limit).await.unwrap();
    assert_eq!(fetched.as_deref(), Some(contents.as_slice()));

    let missing = connection.download(&format!("{dir}/nope.xml"), limit).await;
    assert!(matches!(missing, Ok(None)), "{missing:?}");

    let error = connection.download(&report, limit - 1).await.unwrap_err();
    assert!(matches!(error, SshError::Sftp { .. }), "{error:?}");
    assert!(error.to_string().contains("limit"), "{error}");
    stdout_of(&connection, &format!("rm -rf {dir}")).await;
}

#[tokio::test]
async fn the_pool_lends_a_connection_only_to_callers_with_its_credential() {
    let sshd = TestSshd::start();
    let pool = SshPool::new(SshOptions::default());
    let owner = password(&sshd);
    let held = pool.get(&owner, &AcceptFirstKey).await.unwrap();
    // Another machine with the same address and user but without the password.
    let intruder = target(&sshd, SshAuth::Password("not-the-password".into()));
    let error = pool.get(&intruder, &AcceptFirstKey).await.err();
    assert!(
        matches!(error, Some(SshError::AuthFailed { .. })),
        "{error:?}"
    );
    assert!(!held.is_closed());
    assert_eq!(pool.connections_opened(), 1);
}

#[tokio::test]
async fn the_pool_runs_20_concurrent_execs_over_one_connection_and_reconnects() {
    let sshd = TestSshd::start();
    let target = target(&sshd, SshAuth::PrivateKey(sshd.ed25519_key.clone()));
    let options = SshOptions {
        users_per_connection: 20,
        ..SshOptions::default()
    };
    let pool = Arc::new(SshPool::new(options));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (pool, target) = (pool.clone(), target.clone());
            tokio::spawn(async move {
                let connection = pool.get(&target, &AcceptFirstKey).await.unwrap();
                stdout_of(&connection, "sleep 0.3; echo $SSH_CONNECTION").await
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap());
    }
    // SSH_CONNECTION names the client's port: one value means one TCP connection.
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(pool.connections_opened(), 1);

    let connection = pool.get(&target, &AcceptFirstKey).await.unwrap();
    connection.close().await.unwrap();
    runledger_test_support::eventually(Duration::from_secs(5), "the close", || async {
        connection.is_closed().then_some(())
    })
    .await;
    let again = pool.get(&target, &AcceptFirstKey).await.unwrap();
    assert_eq!(stdout_of(&again, "echo back").await, "back\n");
    assert_eq!(pool.connections_opened(), 2);
}

#[tokio::test]
async fn the_pool_opens_another_connection_when_one_is_full_and_waits_at_the_bound() {
    let sshd = TestSshd::start();
    let target = target(&sshd, SshAuth::PrivateKey(sshd.ed25519_key.clone()));
    let options = SshOptions {
        users_per_connection: 2,
        max_connections_per_machine: 2,
        ..SshOptions::default()
    };
    let pool = Arc::new(SshPool::new(options));
    let held: Vec<_> = futures_held(&pool, &target, 4).await;
    let ports: std::collections::HashSet<String> = {
        let mut ports = std::collections::HashSet::new();
        for connection in &held {
            ports.insert(stdout_of(connection, "echo $SSH_CONNECTION").await);
        }
        ports
    };
    assert_eq!(ports.len(), 2, "two callers per connection: {ports:?}");
    assert_eq!(pool.connections_opened(), 2);
    // Both connections are full and at the bound: the fifth caller waits for a slot.
    let fifth = {
        let (pool, target) = (pool.clone(), target.clone());
        tokio::spawn(async move { pool.get(&target, &AcceptFirstKey).await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fifth.is_finished(), "waits while every slot is taken");
    drop(held);
    fifth.await.unwrap().unwrap();
    assert_eq!(pool.connections_opened(), 2);
}

async fn futures_held(
    pool: &Arc<SshPool>,
    target: &SshTarget,
    count: usize,
) -> Vec<runledger_executor::ssh::PooledConnection> {
    let mut held = Vec::new();
    for _ in 0..count {
        held.push(pool.get(target, &AcceptFirstKey).await.unwrap());
    }
    held
}
