//! What every request passes: security headers on every response, cross-site POSTs refused
//! (CSRF on the login form included), and the client's address for login throttling.

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// No script but /reader.js, no framing, no plugins, forms only to this server.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not no-referrer: under it browsers send `Origin: null` with same-origin form posts.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether a POST comes from another site: its Origin names another host than the one it
/// was sent to (or is `null`), or the browser says Sec-Fetch-Site: cross-site.
fn cross_site(headers: &HeaderMap, authority: Option<&str>) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let fetch_site = text(header::HeaderName::from_static("sec-fetch-site"));
    if fetch_site == Some("cross-site") || fetch_site == Some("same-site") {
        return true;
    }
    // HTTP/2 carries the host in the request's authority, not in a Host header.
    match (text(header::ORIGIN), text(header::HOST).or(authority)) {
        (None, _) => false,
        // A browser that hides the origin but says the request is same-origin.
        (Some("null"), _) if fetch_site == Some("same-origin") => false,
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, authority)| authority) != Some(host),
        (Some(_), None) => true,
    }
}

/// Refuses cross-site POSTs before any handler runs (the login form has no session to carry
/// a CSRF token; the other forms have one as well).
pub async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && cross_site(request.headers(), request.uri().authority().map(|a| a.as_str()))
    {
        // A small form body is read before the refusal, so that the answer does not race the
        // request's own upload (over HTTP/2 an unread body ends in a stream reset, which some
        // clients report instead of the 403). Larger bodies are left unread.
        let _ = axum::body::to_bytes(request.into_body(), REFUSED_BODY_READ).await;
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    next.run(request).await
}

/// How much of a refused POST's body is read before the 403.
const REFUSED_BODY_READ: usize = 16 * 1024;

/// The client's address, when the server knows it (tests in process do not).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        // Behind a reverse proxy on this machine every peer is loopback: the proxy's
        // X-Forwarded-For (its last entry, the one the proxy added) names the client. Only
        // trusted from loopback, where no one else can connect.
        let forwarded = || {
            let value = parts.headers.get("x-forwarded-for")?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        };
        Ok(ClientAddr(match peer {
            Some(ip) if ip.is_loopback() => forwarded().or(Some(ip)),
            other => other,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_posts_pass() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8080")]), None));
        assert!(!cross_site(
            &headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]),
            None
        ));
        assert!(cross_site(
            &headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")]),
            None
        ));
        assert!(cross_site(
            &headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            None
        ));
        assert!(cross_site(
            &headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]),
            None
        ));
        // HTTP/2: no Host header, the authority of the request instead.
        assert!(!cross_site(
            &headers(&[("origin", "https://reading.example:8443")]),
            Some("reading.example:8443")
        ));
        assert!(cross_site(
            &headers(&[("origin", "https://evil.example")]),
            Some("reading.example:8443")
        ));
    }
}
