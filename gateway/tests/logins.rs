//! Logging in under attack, against the real services: a burst of wrong passwords is limited
//! before argon2 runs, two gateways over one database share the count, an attacker's failures
//! do not lock the user out of another address, and an unknown user costs an argon2 run like a
//! known one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::{Client, StatusCode};
use runledger_gateway::AppState;
use runledger_test_support::{RunningHandler, RunningProjector, TestLab};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "ada";
const MEMBER: &str = "mia";

fn password(user: &str) -> String {
    format!("{user}-password-1")
}

struct Logins {
    lab: TestLab,
    handler: RunningHandler,
    /// Logins read the `accounts` read model.
    projector: RunningProjector,
    shutdown: CancellationToken,
    addr: SocketAddr,
    state: AppState,
}

impl Logins {
    async fn start() -> Logins {
        let lab = TestLab::create().await;
        let handler = lab.start_handler().await;
        let projector = lab.start_projector(1000).await;
        let client = lab.client();
        for (user, role) in [(ADMIN, "admin"), (MEMBER, "member")] {
            let body = json!({"username": user, "role": role, "password": password(user)});
            let outcome = client.send("register_user", "bootstrap", body).await;
            assert!(outcome.accepted, "{outcome:?}");
        }
        let shutdown = CancellationToken::new();
        let (addr, state, _) = common::serve_gateway_with(&lab, &shutdown, |_| {}).await;
        Logins {
            lab,
            handler,
            projector,
            shutdown,
            addr,
            state,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.handler.stop().await;
        self.projector.stop().await;
        self.lab.cleanup().await;
    }
}

/// An HTTP client whose connections come from `source` (any 127.0.0.0/8 address is this host).
fn from(source: &str) -> Client {
    let ip: IpAddr = source.parse().unwrap();
    Client::builder().local_address(ip).build().unwrap()
}

/// Logs in at `addr`; the status, the `Retry-After` header and the body.
async fn login(
    http: &Client,
    addr: SocketAddr,
    user: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = http
        .post(format!("http://{addr}/api/v1/tokens"))
        .json(&json!({"username": user, "password": password}));
    if let Some(forwarded) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Wrong passwords until one is refused with 429.
async fn fail_until_limited(http: &Client, addr: SocketAddr, user: &str) {
    for _ in 0..10 {
        let (status, _, _) = login(http, addr, user, "wrong-password", None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    panic!("ten wrong passwords were never limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_passwords_is_limited_before_argon2_runs() {
    let t = Logins::start().await;
    let http = from("127.0.0.1");
    let before = t.state.passwords.runs();
    let burst = (0..50).map(|_| login(&http, t.addr, MEMBER, "wrong-password", None));
    let answers = futures::future::join_all(burst).await;
    let limited: Vec<_> = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    let refused = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::UNAUTHORIZED)
        .count();
    let runs = t.state.passwords.runs() - before;
    assert_eq!(limited.len() + refused, 50, "{answers:?}");
    assert!(limited.len() >= 45, "only {} of 50 limited", limited.len());
    assert!(runs <= 4, "argon2 ran {runs} times for a burst of 50");
    assert_eq!(
        runs as usize, refused,
        "every 401 cost one argon2 run, no 429 did"
    );
    let (_, retry_after, body) = limited[0];
    let seconds: u64 = retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    assert_eq!(body["error"]["code"], "too_many_failed_logins", "{body}");
    // The right password from that address waits too.
    let (status, _, _) = login(&http, t.addr, MEMBER, &password(MEMBER), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_over_one_database_share_the_count() {
    let t = Logins::start().await;
    let (other, _, _) = common::serve_gateway_with(&t.lab, &t.shutdown, |_| {}).await;
    let http = from("127.0.0.1");
    fail_until_limited(&http, t.addr, MEMBER).await;
    let (status, retry_after, _) = login(&http, other, MEMBER, &password(MEMBER), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attackers_failures_do_not_lock_the_user_out_of_another_address() {
    let t = Logins::start().await;
    let attacker = from("127.0.0.1");
    fail_until_limited(&attacker, t.addr, ADMIN).await;
    let (status, _, _) = login(&attacker, t.addr, ADMIN, &password(ADMIN), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The real admin, from an address with no failures, logs in at once.
    let (status, _, body) = login(&from("127.0.0.2"), t.addr, ADMIN, &password(ADMIN), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The attacker's own other usernames are not limited by this one.
    let (status, _, _) = login(&attacker, t.addr, MEMBER, &password(MEMBER), None).await;
    assert_eq!(status, StatusCode::CREATED);

    // X-Forwarded-For counts only where the operator trusts a proxy to set it.
    let forwarded = Some("10.0.0.7");
    let (status, _, _) = login(&attacker, t.addr, ADMIN, &password(ADMIN), forwarded).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged header escaped"
    );
    let (behind_proxy, _, _) =
        common::serve_gateway_with(&t.lab, &t.shutdown, |s| s.trust_forwarded_for = true).await;
    let (status, _, body) =
        login(&attacker, behind_proxy, ADMIN, &password(ADMIN), forwarded).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_costs_an_argon2_run_like_a_known_one() {
    let t = Logins::start().await;
    // Each from its own address, so that no attempt is limited.
    let cases = [
        (
            "127.0.0.11",
            MEMBER,
            "wrong-password",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "127.0.0.12",
            "nobody",
            "wrong-password",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "127.0.0.13",
            "not a username!",
            "x",
            StatusCode::UNAUTHORIZED,
        ),
        ("127.0.0.14", MEMBER, &password(MEMBER), StatusCode::CREATED),
    ];
    for (source, user, pass, expected) in cases {
        let before = t.state.passwords.runs();
        let (status, _, body) = login(&from(source), t.addr, user, pass, None).await;
        assert_eq!(status, expected, "{user}: {body}");
        assert_eq!(t.state.passwords.runs() - before, 1, "{user}: argon2 runs");
    }
    let (_, _, wrong) = login(&from("127.0.0.15"), t.addr, MEMBER, "bad-password", None).await;
    let (_, _, unknown) = login(&from("127.0.0.16"), t.addr, "nobody", "bad-password", None).await;
    assert_eq!(wrong, unknown, "the answers tell the unknown user apart");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_failed_logins_are_pruned() {
    let t = Logins::start().await;
    fail_until_limited(&from("127.0.0.1"), t.addr, MEMBER).await;
    let pool = &t.lab.db.pool;
    let rows = || async {
        runledger_test_support::sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM gateway.login_attempts",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    };
    assert_eq!(
        rows().await,
        2,
        "one row per username and address, one per address"
    );
    assert_eq!(runledger_gateway::limiter::prune(pool).await.unwrap(), 0);
    runledger_test_support::sqlx::query(
        "UPDATE gateway.login_attempts SET updated_at = now() - interval '1 hour', \
         blocked_until = now() - interval '1 minute'",
    )
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(runledger_gateway::limiter::prune(pool).await.unwrap(), 2);
    assert_eq!(rows().await, 0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spraying_many_usernames_from_one_address_is_limited_too() {
    let t = Logins::start().await;
    let (sprayed, _, _) = common::serve_gateway_with(&t.lab, &t.shutdown, |s| {
        s.login_limits.free_per_client = 3;
    })
    .await;
    let sprayer = from("127.0.0.21");
    // Each username fails once: no per-user limit applies, the per-address one does.
    for n in 0..4 {
        let user = format!("guess{n}");
        let (status, _, _) = login(&sprayer, sprayed, &user, "wrong-password", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let (status, retry_after, _) = login(&sprayer, sprayed, ADMIN, &password(ADMIN), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
    let (status, _, _) = login(&from("127.0.0.22"), sprayed, ADMIN, &password(ADMIN), None).await;
    assert_eq!(status, StatusCode::CREATED);
    t.stop().await;
}
