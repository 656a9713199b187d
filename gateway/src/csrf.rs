//! Cross-site request forgery: a page on another site can make a browser send a `POST` with the
//! dashboard's cookie, but only as a form (`application/x-www-form-urlencoded`,
//! `multipart/form-data` or `text/plain`) unless the gateway answers a CORS preflight, which it
//! never does. So every state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`) authenticated
//! by the cookie must say `Content-Type: application/json`, or gets 415 before any handler runs.
//! A request with an `Authorization` header is exempt: another site cannot make a browser send
//! one. `SameSite=Strict` on the cookie is the first line; this holds where it does not (older
//! browsers, a sibling subdomain).

use crate::auth::cookie_token;
use crate::error::ApiError;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuses a cookie-authenticated state-changing request that is not JSON.
pub async fn require_json(request: Request, next: Next) -> Response {
    if changes_state(request.method())
        && !request.headers().contains_key(AUTHORIZATION)
        && cookie_token(request.headers()).is_some()
        && !is_json(request.headers())
    {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "a {} authenticated by the session cookie must send Content-Type: \
                 application/json (protection against cross-site requests)",
                request.method()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// True for `application/json`, with or without parameters such as `charset`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_with_parameters_is_json_and_forms_are_not() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json(&headers));
        for form in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(form));
            assert!(!is_json(&headers), "{form}");
        }
        assert!(!is_json(&HeaderMap::new()));
        assert!(changes_state(&Method::DELETE) && !changes_state(&Method::GET));
    }
}
