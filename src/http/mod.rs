//! HTTP in and out: the router, request parsing, and the one error-to-HTTP mapping.
//! Handlers are thin: parse, call a `Gateway` use case, render.

mod admin;
mod auth;
mod authorize;
mod body;
mod console;
mod error;
mod flow_page;
mod form;
mod health;
mod introspect;
mod jwks;
mod logout;
mod metadata;
mod openapi;
mod request_log;
mod revoke;
pub mod router;
mod token;
mod userinfo;

pub use error::ApiError;
pub use router::handle;

use crate::domain::tenant::Tenant;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use hyper::{HeaderMap, Response, StatusCode};

pub type Body = Full<Bytes>;

/// A JSON answer; every OAuth and API answer is `no-store` (RFC 6749 §5.1).
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body =
        serde_json::to_vec(value).unwrap_or_else(|_| b"{\"error\":\"server_error\"}".to_vec());
    uncached(status, "application/json", Bytes::from(body))
}

/// A body of `content_type` that no one may store: every OAuth and API answer.
pub fn uncached(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = typed(status, content_type, body);
    no_store(response.headers_mut());
    response
}

/// A 200 of `content_type` that callers may keep as `cache_control` says.
pub fn cacheable(
    content_type: &'static str,
    body: Bytes,
    cache_control: &'static str,
) -> Response<Body> {
    let mut response = typed(StatusCode::OK, content_type, body);
    let cache = HeaderValue::from_static(cache_control);
    response.headers_mut().insert(CACHE_CONTROL, cache);
    response
}

fn typed(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let content_type = HeaderValue::from_static(content_type);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// An answer with no body (RFC 7009 §2.2: revocation answers 200).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    no_store(response.headers_mut());
    response
}

fn no_store(headers: &mut hyper::HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The name of a tenant's single sign-on cookie: one per tenant, so that a browser can
/// be signed in to several; `__Host-`, so that no subdomain can set it.
fn sign_in_cookie_name(tenant: &Tenant) -> String {
    format!("__Host-portcullis_session.{}", tenant.domain.as_str())
}

/// Sets (`Some`) or ends (`None`) the single sign-on cookie of `tenant` on `response`.
/// No `Max-Age` on a set cookie: the browser forgets the session when it closes, and
/// the server ends it before, when it is idle or over.
pub(super) fn set_sign_in_cookie(
    response: &mut Response<Body>,
    tenant: &Tenant,
    value: Option<&str>,
) {
    let name = sign_in_cookie_name(tenant);
    let cookie = match value {
        Some(value) => format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax"),
        None => format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .append(hyper::header::SET_COOKIE, value);
    }
}

/// The request's single sign-on cookie for `tenant`.
pub(super) fn sign_in_cookie(headers: &HeaderMap, tenant: &Tenant) -> Option<String> {
    cookie(headers, &sign_in_cookie_name(tenant))
}

/// The value of the cookie `name` the request carries (RFC 6265 §5.4 `Cookie` pairs).
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether `Accept` names `media_type` itself with a non-zero weight; a wildcard
/// does not name it.
pub fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let named = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            named.eq_ignore_ascii_case(media_type) && !refused
        })
}
