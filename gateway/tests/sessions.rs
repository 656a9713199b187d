//! Users and sessions against the real services: a disabled user's token stops working on two
//! gateways at once and they cannot log in, a changed password ends the old one and its tokens,
//! `revoke_tokens` ends every token, a cookie-authenticated request that is not JSON is refused
//! (CSRF), and the cookie is `Secure` outside development.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::{Client, Method, StatusCode};
use runledger_test_support::{RunningHandler, RunningProjector, TestLab, eventually};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "ada";
const MEMBER: &str = "mia";
const OTHER: &str = "otto";

fn password(user: &str) -> String {
    format!("{user}-password-1")
}

struct Sessions {
    lab: TestLab,
    handler: RunningHandler,
    /// Logins read the `accounts` read model.
    projector: RunningProjector,
    shutdown: CancellationToken,
    one: SocketAddr,
    two: SocketAddr,
    http: Client,
}

impl Sessions {
    /// Two gateways over one lab with an admin and two members.
    async fn start() -> Sessions {
        let lab = TestLab::create().await;
        let handler = lab.start_handler().await;
        let projector = lab.start_projector(1000).await;
        let client = lab.client();
        for (user, role) in [(ADMIN, "admin"), (MEMBER, "member"), (OTHER, "member")] {
            let body = json!({"username": user, "role": role, "password": password(user)});
            assert!(
                client
                    .send("register_user", "bootstrap", body)
                    .await
                    .accepted
            );
        }
        let shutdown = CancellationToken::new();
        let one = common::serve_gateway(&lab, &shutdown).await;
        let two = common::serve_gateway(&lab, &shutdown).await;
        Sessions {
            lab,
            handler,
            projector,
            shutdown,
            one,
            two,
            http: Client::new(),
        }
    }

    async fn call(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("http://{addr}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn try_login(&self, user: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({"username": user, "password": password});
        self.call(self.one, Method::POST, "/api/v1/tokens", None, Some(body))
            .await
    }

    async fn login(&self, user: &str) -> String {
        let (status, answer) = self.try_login(user, &password(user)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["token"].as_str().unwrap().to_owned()
    }

    async fn me(&self, addr: SocketAddr, token: &str) -> StatusCode {
        self.call(addr, Method::GET, "/api/v1/me", Some(token), None)
            .await
            .0
    }

    /// Waits until `token` is refused on both gateways; fails if that takes as long as the
    /// token cache's lifetime (the refusal must come from the event, not from the cache ageing).
    async fn refused_at_once(&self, token: &str) {
        let since = Instant::now();
        for addr in [self.one, self.two] {
            eventually(Duration::from_secs(5), "the token refused", || async {
                (self.me(addr, token).await == StatusCode::UNAUTHORIZED).then_some(())
            })
            .await;
        }
        let waited = since.elapsed();
        assert!(
            waited < runledger_gateway::auth::TOKEN_CACHE_TTL,
            "refused only after {waited:?}"
        );
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.handler.stop().await;
        self.projector.stop().await;
        self.lab.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_token_is_refused_at_once_on_two_gateways() {
    let s = Sessions::start().await;
    let mia = s.login(MEMBER).await;
    let otto = s.login(OTHER).await;
    for token in [&mia, &otto] {
        // Checked, and so cached, on both.
        assert_eq!(s.me(s.one, token).await, StatusCode::OK);
        assert_eq!(s.me(s.two, token).await, StatusCode::OK);
    }
    // Over NATS, as the CLI sends it: no gateway is involved.
    let outcome = s
        .lab
        .client()
        .send("disable_user", ADMIN, json!({"username": MEMBER}))
        .await;
    assert!(outcome.accepted, "{outcome:?}");
    s.refused_at_once(&mia).await;
    let (status, answer) = s.try_login(MEMBER, &password(MEMBER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "user_disabled");
    let (status, _) = s.try_login(MEMBER, "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Over HTTP: members may not, admins may; others' tokens are untouched.
    let path = format!("/api/v1/users/{OTHER}/disable");
    let (status, _) = s.call(s.one, Method::POST, &path, Some(&otto), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = s.login(ADMIN).await;
    let (status, answer) = s.call(s.one, Method::POST, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    s.refused_at_once(&otto).await;
    assert_eq!(s.me(s.two, &admin).await, StatusCode::OK);
    let (status, answer) = s
        .call(
            s.one,
            Method::POST,
            "/api/v1/users/nobody/disable",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("unknown_user"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_ends_the_old_one_and_its_tokens() {
    let s = Sessions::start().await;
    let mia = s.login(MEMBER).await;
    assert_eq!(s.me(s.two, &mia).await, StatusCode::OK);
    let path = format!("/api/v1/users/{MEMBER}/password");
    let new = "a brand new password";
    let attempts = [
        (json!({"password": new}), StatusCode::BAD_REQUEST),
        (
            json!({"password": new, "current_password": "wrong-password"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"password": "short", "current_password": password(MEMBER)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, expected) in attempts {
        let (status, answer) = s
            .call(s.one, Method::PUT, &path, Some(&mia), Some(body))
            .await;
        assert_eq!(status, expected, "{answer}");
    }
    // A member may not change another's.
    let other = format!("/api/v1/users/{OTHER}/password");
    let body = json!({"password": new});
    let (status, _) = s
        .call(s.one, Method::PUT, &other, Some(&mia), Some(body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let body = json!({"password": new, "current_password": password(MEMBER)});
    let (status, answer) = s
        .call(s.one, Method::PUT, &path, Some(&mia), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    s.refused_at_once(&mia).await;
    let (status, _) = s.try_login(MEMBER, &password(MEMBER)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old password still works"
    );
    let (status, answer) = s.try_login(MEMBER, new).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // An admin changes anyone's without theirs; the hash is stored, never the password.
    let admin = s.login(ADMIN).await;
    let body = json!({"password": "otto's new password"});
    let (status, answer) = s
        .call(s.one, Method::PUT, &other, Some(&admin), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, _) = s.try_login(OTHER, "otto's new password").await;
    assert_eq!(status, StatusCode::CREATED);
    let logged: Vec<String> = runledger_test_support::sqlx::query_scalar(
        "SELECT data::text FROM events WHERE type = 'password_changed' ORDER BY position",
    )
    .fetch_all(&s.lab.db.pool)
    .await
    .unwrap();
    assert_eq!(logged.len(), 2);
    for data in logged {
        assert!(data.contains("$argon2id$"), "{data}");
        assert!(
            !data.contains(new) && !data.contains("otto's new"),
            "{data}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_tokens_ends_every_token_of_the_user() {
    let s = Sessions::start().await;
    let first = s.login(MEMBER).await;
    let second = s.login(MEMBER).await;
    let otto = s.login(OTHER).await;
    for token in [&first, &second] {
        assert_eq!(s.me(s.two, token).await, StatusCode::OK);
    }
    let path = format!("/api/v1/users/{MEMBER}/tokens");
    let (status, _) = s
        .call(s.one, Method::DELETE, &path, Some(&otto), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = s.login(ADMIN).await;
    let (status, answer) = s
        .call(s.one, Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    s.refused_at_once(&first).await;
    s.refused_at_once(&second).await;
    assert_eq!(s.me(s.two, &otto).await, StatusCode::OK);
    // The user may log in again.
    let again = s.login(MEMBER).await;
    assert_eq!(s.me(s.two, &again).await, StatusCode::OK);
    s.stop().await;
}

/// A cookie-authenticated `POST`/`DELETE` without a JSON content type: what a form on another
/// site can make a browser send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_request_that_is_not_json_is_refused() {
    let s = Sessions::start().await;
    let token = s.login(MEMBER).await;
    let cookie = format!("rl_token={token}");
    let cancel = format!(
        "http://{}/api/v1/runs/{}/cancel",
        s.one,
        uuid::Uuid::now_v7()
    );
    let forged = [
        s.http.post(&cancel).header("cookie", &cookie),
        s.http
            .post(&cancel)
            .header("cookie", &cookie)
            .header("content-type", "text/plain")
            .body("{}"),
        s.http
            .post(&cancel)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("reason=x"),
        s.http
            .delete(format!("http://{}/api/v1/tokens/current", s.one))
            .header("cookie", &cookie),
    ];
    for request in forged {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    assert_eq!(
        s.me(s.one, &token).await,
        StatusCode::OK,
        "the forged logout worked"
    );
    // JSON with the cookie, or a bearer token without a body, passes (to the unknown run's 404).
    let json = s
        .http
        .post(&cancel)
        .header("cookie", &cookie)
        .json(&json!({}));
    assert_eq!(json.send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let bearer = s.http.post(&cancel).bearer_auth(&token);
    assert_eq!(bearer.send().await.unwrap().status(), StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_secure_outside_development() {
    let s = Sessions::start().await;
    let (dev, _, _) = common::serve_gateway_with(&s.lab, &s.shutdown, |settings| {
        settings.secure_cookie = false;
    })
    .await;
    let body = json!({"username": MEMBER, "password": password(MEMBER)});
    let cookie = |addr: SocketAddr| {
        let request = s
            .http
            .post(format!("http://{addr}/api/v1/tokens"))
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            let cookie = response.headers().get("set-cookie").unwrap();
            cookie.to_str().unwrap().to_owned()
        }
    };
    let secure = cookie(s.one).await;
    assert!(secure.contains("; Secure"), "{secure}");
    assert!(
        secure.contains("HttpOnly") && secure.contains("SameSite=Strict"),
        "{secure}"
    );
    let plain = cookie(dev).await;
    assert!(!plain.contains("Secure"), "{plain}");
    s.stop().await;
}
