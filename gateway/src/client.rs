//! The client address a login is counted under: the TCP peer's address, or, when the operator
//! says a proxy in front sets it ([`GatewaySettings::trust_forwarded_for`](crate::GatewaySettings)),
//! the last address of `X-Forwarded-For` (the one that proxy appended; earlier ones are whatever
//! the client sent). IPv6 addresses count by their /64, which one host usually holds whole.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The caller's client address as failed logins are counted: an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey(pub String);

impl FromRequestParts<AppState> for ClientKey {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let trust = state.settings.trust_forwarded_for;
        Ok(Self(client_key(peer, &parts.headers, trust)))
    }
}

/// The key of the client at `peer` sending `headers`.
pub fn client_key(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trust_forwarded_for: bool,
) -> String {
    let forwarded = trust_forwarded_for
        .then(|| forwarded_for(headers))
        .flatten();
    match forwarded.or(peer.map(|peer| peer.ip())) {
        Some(ip) => key(ip),
        None => "unknown".to_owned(),
    }
}

/// The last address of the last `X-Forwarded-For` header, if it is one.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let value = last.to_str().ok()?;
    value.rsplit(',').next()?.trim().parse().ok()
}

fn key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn peer(addr: &str) -> Option<SocketAddr> {
        addr.parse().ok()
    }

    #[test]
    fn the_peer_counts_unless_the_proxy_is_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 10.1.2.3"),
        );
        assert_eq!(
            client_key(peer("127.0.0.1:9"), &headers, false),
            "127.0.0.1"
        );
        assert_eq!(client_key(peer("127.0.0.1:9"), &headers, true), "10.1.2.3");
        let forged = HeaderMap::new();
        assert_eq!(client_key(peer("127.0.0.1:9"), &forged, true), "127.0.0.1");
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let a = client_key(peer("[2001:db8:1:2:aaaa::1]:9"), &HeaderMap::new(), false);
        let b = client_key(peer("[2001:db8:1:2:bbbb::2]:9"), &HeaderMap::new(), false);
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        let mapped = client_key(peer("[::ffff:10.0.0.1]:9"), &HeaderMap::new(), false);
        assert_eq!(mapped, "10.0.0.1");
    }
}
