//! Trust on first use pins before it trusts. Against a real sshd (which logs every
//! authentication attempt at `LogLevel VERBOSE`): a first-seen host key that is refused, not
//! answered for, or other than the one the handler has pinned gets no credential at all, nor
//! does a server presenting a key other than the pin; an accepted key is pinned first, and only
//! then does the password go out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use runledger_executor::service::{NatsReporter, PinRefused, PinThroughHandler};
use runledger_executor::ssh::{
    AcceptFirstKey, ApprovalError, ApproveHostKey, SshAuth, SshError, SshOptions, SshPool,
    SshTarget, connect,
};
use runledger_test_support::{TestLab, TestSshd, auth_lines, eventually};
use runledger_types::MachineId;
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);
const OTHER_KEY: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

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

/// Refuses every key.
struct Refuse;

impl ApproveHostKey for Refuse {
    async fn approve(&self, _fingerprint: &str) -> Result<(), ApprovalError> {
        Err("refused by the test".into())
    }
}

/// Never answers.
struct Silent;

impl ApproveHostKey for Silent {
    async fn approve(&self, _fingerprint: &str) -> Result<(), ApprovalError> {
        std::future::pending().await
    }
}

/// Asks `inner`, then notes the fingerprint and the sshd's authentication lines at that moment.
struct Observed<A> {
    inner: A,
    log: PathBuf,
    seen: Mutex<Vec<(String, Vec<String>)>>,
}

impl<A> Observed<A> {
    fn new(inner: A, sshd: &TestSshd) -> Self {
        Self {
            inner,
            log: sshd.log_path(),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn seen(&self) -> Vec<(String, Vec<String>)> {
        self.seen.lock().unwrap().clone()
    }
}

impl<A: ApproveHostKey + Send> ApproveHostKey for Observed<A> {
    async fn approve(&self, fingerprint: &str) -> Result<(), ApprovalError> {
        let result = self.inner.approve(fingerprint).await;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let noted = (fingerprint.to_owned(), auth_lines(&log));
        self.seen.lock().unwrap().push(noted);
        result
    }
}

/// Waits until the sshd has logged the end of `count` connections, then asserts that it logged
/// no authentication attempt.
async fn no_credential_reached(sshd: &TestSshd, count: usize) {
    eventually(WAIT, "the sshd logs the connections' end", || async {
        (sshd.connections_closed() >= count).then_some(())
    })
    .await;
    let attempts = sshd.auth_attempts();
    assert!(attempts.is_empty(), "{attempts:?}\n{}", sshd.log());
}

fn not_approved(error: &SshError, sshd: &TestSshd) -> String {
    match error {
        SshError::HostKeyNotApproved { presented, reason } => {
            assert_eq!(*presented, sshd.host_key_fingerprint);
            reason.to_string()
        }
        other => panic!("expected HostKeyNotApproved, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_first_seen_key_gets_neither_password_nor_key() {
    let sshd = TestSshd::start();
    let options = SshOptions::default();
    let password = password(&sshd);
    let error = connect(&password, &options, &Refuse).await.err().unwrap();
    assert!(not_approved(&error, &sshd).contains("refused by the test"));
    let key = target(&sshd, SshAuth::PrivateKey(sshd.ed25519_key.clone()));
    let error = connect(&key, &options, &Refuse).await.err().unwrap();
    not_approved(&error, &sshd);
    no_credential_reached(&sshd, 2).await;
}

#[tokio::test]
async fn an_unanswered_approval_times_out_unauthenticated() {
    let sshd = TestSshd::start();
    let options = SshOptions {
        approval_timeout: Duration::from_millis(300),
        ..SshOptions::default()
    };
    let error = connect(&password(&sshd), &options, &Silent)
        .await
        .err()
        .unwrap();
    assert!(not_approved(&error, &sshd).contains("no answer"));
    no_credential_reached(&sshd, 1).await;
}

#[tokio::test]
async fn a_key_other_than_the_pin_gets_no_credential_and_is_not_approved() {
    let sshd = TestSshd::start();
    let mut pinned = password(&sshd);
    pinned.pinned_host_key = Some(OTHER_KEY.to_owned());
    let observed = Observed::new(AcceptFirstKey, &sshd);
    let error = connect(&pinned, &SshOptions::default(), &observed)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, SshError::HostKeyMismatch { .. }),
        "{error:?}"
    );
    assert!(
        observed.seen().is_empty(),
        "a pinned target needs no approval"
    );
    no_credential_reached(&sshd, 1).await;
}

#[tokio::test]
async fn an_approved_key_is_approved_before_the_password_is_sent() {
    let sshd = TestSshd::start();
    let observed = Observed::new(AcceptFirstKey, &sshd);
    let (connection, first_use) = connect(&password(&sshd), &SshOptions::default(), &observed)
        .await
        .unwrap();
    assert_eq!(
        first_use.as_deref(),
        Some(sshd.host_key_fingerprint.as_str())
    );
    let seen = observed.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, sshd.host_key_fingerprint);
    assert!(
        seen[0].1.is_empty(),
        "authenticated before approval: {seen:?}"
    );
    assert!(!connection.is_closed());
    eventually(WAIT, "the sshd logs the accepted password", || async {
        let attempts = sshd.auth_attempts();
        attempts
            .iter()
            .any(|line| line.contains("Accepted password for"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_pool_keeps_no_connection_whose_key_was_refused() {
    let sshd = TestSshd::start();
    let pool = SshPool::new(SshOptions::default());
    let target = password(&sshd);
    let error = pool.get(&target, &Refuse).await.err().unwrap();
    not_approved(&error, &sshd);
    let observed = Observed::new(AcceptFirstKey, &sshd);
    let pooled = pool.get(&target, &observed).await.unwrap();
    assert_eq!(pooled.host_key_fingerprint(), sshd.host_key_fingerprint);
    assert_eq!(
        observed.seen().len(),
        1,
        "the refused connection was pooled"
    );
    assert_eq!(pool.connections_opened(), 1);
}

/// An admin and one machine on `sshd` whose handler-side pin is `host_key`, in `lab` (whose
/// handler runs); the reporter an executor named `tofu` would use.
async fn machine_on(
    lab: &TestLab,
    sshd: &TestSshd,
    host_key: Option<&str>,
) -> (MachineId, NatsReporter) {
    let client = lab.client();
    let user = json!({"username": "admin", "role": "admin", "password": "admin-password"});
    assert!(
        client
            .send("register_user", "bootstrap", user)
            .await
            .accepted
    );
    let machine_id = Uuid::now_v7();
    let mut machine = json!({"machine_id": machine_id, "name": "sshd", "host": sshd.host,
                             "port": sshd.port, "username": sshd.username, "password": sshd.password});
    if let Some(key) = host_key {
        machine["host_key"] = json!(key);
    }
    let outcome = client.send("register_machine", "admin", machine).await;
    assert!(outcome.accepted, "{outcome:?}");
    (
        MachineId::from(machine_id),
        reporter(lab, Duration::from_secs(5)),
    )
}

fn reporter(lab: &TestLab, timeout: Duration) -> NatsReporter {
    NatsReporter::new(
        lab.nats.client.clone(),
        lab.nats.names.clone(),
        "tofu",
        timeout,
        1,
    )
}

async fn pinned_keys(lab: &TestLab) -> Vec<String> {
    let log = lab.store.read_after(0, 10_000).await.unwrap();
    log.iter()
        .filter(|e| e.event_type == "host_key_pinned")
        .map(|e| e.data["fingerprint"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_pins_the_first_key_before_the_executor_authenticates() {
    let sshd = TestSshd::start();
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    let (machine_id, reporter) = machine_on(&lab, &sshd, None).await;
    let pin = Observed::new(PinThroughHandler::new(reporter, machine_id), &sshd);
    let (connection, _) = connect(&password(&sshd), &SshOptions::default(), &pin)
        .await
        .unwrap();
    let seen = pin.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].1.is_empty(),
        "authenticated before the pin: {seen:?}"
    );
    assert_eq!(
        pinned_keys(&lab).await,
        vec![sshd.host_key_fingerprint.clone()]
    );
    assert!(!connection.is_closed());
    // The same key again is accepted without a second pin.
    connect(&password(&sshd), &SshOptions::default(), &pin)
        .await
        .unwrap();
    assert_eq!(pinned_keys(&lab).await.len(), 1);
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_other_than_the_handlers_pin_gets_no_credential() {
    let sshd = TestSshd::start();
    let lab = TestLab::create().await;
    let handler = lab.start_handler().await;
    // The handler has another key pinned; this executor has not heard of it yet.
    let (machine_id, reporter) = machine_on(&lab, &sshd, Some(OTHER_KEY)).await;
    let pin = PinThroughHandler::new(reporter, machine_id);
    let refused = pin.pin(&sshd.host_key_fingerprint).await.err().unwrap();
    assert!(
        matches!(refused, PinRefused::OtherKeyPinned(_)),
        "{refused:?}"
    );
    let error = connect(&password(&sshd), &SshOptions::default(), &pin)
        .await
        .err()
        .unwrap();
    assert!(not_approved(&error, &sshd).contains("another key is pinned"));
    no_credential_reached(&sshd, 1).await;
    assert_eq!(pinned_keys(&lab).await, Vec::<String>::new());
    handler.stop().await;
    lab.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_nobody_answers_gets_no_credential() {
    let sshd = TestSshd::start();
    // No handler runs: the report is stored but never answered.
    let lab = TestLab::create().await;
    let pin = PinThroughHandler::new(
        reporter(&lab, Duration::from_millis(300)),
        MachineId::from(Uuid::now_v7()),
    );
    let error = connect(&password(&sshd), &SshOptions::default(), &pin)
        .await
        .err()
        .unwrap();
    assert!(not_approved(&error, &sshd).contains("no answer"));
    no_credential_reached(&sshd, 1).await;
    lab.cleanup().await;
}
