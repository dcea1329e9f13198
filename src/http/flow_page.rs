//! What the browser pages of the flows at `/oauth2` share (the sign-in page, the
//! sign-out page): one stylesheet allowed by its hash, the security headers, and the
//! CSRF cookie.
//!
//! CSRF: a page with a form sets a random value in a `__Host-` cookie (Secure,
//! HttpOnly, SameSite=Lax, so no other site or subdomain can set or send it) and
//! repeats it in a hidden field; a POST whose field does not equal its cookie changes
//! nothing. Nothing is kept on the server, so any instance can take the POST.

use super::Body;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Request, Response, StatusCode};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

pub(super) const CSRF_COOKIE: &str = "__Host-portcullis_csrf";

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f3f4f6;color:#111827}\
main{width:100%;max-width:24rem;margin:1rem;padding:2rem;background:#fff;border-radius:12px;\
box-shadow:0 1px 3px rgba(0,0,0,.12)}\
h1{font-size:1.35rem;margin:0 0 .25rem}\
p{margin:.25rem 0 1rem;color:#4b5563}\
.tenant{font-size:.85rem;text-transform:uppercase;letter-spacing:.05em;color:#6b7280;margin:0 0 1rem}\
ul{margin:0 0 1rem;padding-left:1.25rem;color:#374151}\
label{display:block;font-weight:600;margin:.75rem 0 .25rem}\
input[type=text],input[type=password]{width:100%;padding:.65rem .75rem;font-size:1rem;\
border:1px solid #d1d5db;border-radius:8px}\
input:focus,button:focus{outline:3px solid #93c5fd;outline-offset:1px}\
.error{padding:.65rem .75rem;border-radius:8px;background:#fef2f2;color:#991b1b;margin:0 0 1rem}\
.actions{display:flex;flex-direction:row-reverse;gap:.75rem;margin-top:1.5rem}\
button{flex:1;padding:.7rem;font-size:1rem;font-weight:600;border-radius:8px;border:1px solid #1d4ed8;cursor:pointer}\
button.primary{background:#1d4ed8;color:#fff}\
button.secondary{background:#fff;color:#1d4ed8}";

/// `'sha256-…'` of the stylesheet, so the CSP allows exactly it and nothing else.
fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        format!(
            "'sha256-{}'",
            STANDARD.encode(Sha256::digest(STYLE.as_bytes()))
        )
    })
}

/// The CSRF cookie's value, when it has the shape this server gives it.
pub(super) fn csrf_cookie(request: &Request<Bytes>) -> Option<String> {
    super::cookie(request.headers(), CSRF_COOKIE).filter(|v| {
        v.len() == 43
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

pub(super) fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// Whether a form's `csrf` field equals the request's CSRF cookie (in constant time).
pub(super) fn csrf_matches(request: &Request<Bytes>, field: Option<&str>) -> bool {
    match (csrf_cookie(request), field) {
        (Some(cookie), Some(field)) => bool::from(cookie.as_bytes().ct_eq(field.as_bytes())),
        _ => false,
    }
}

/// Where a page's form may send the browser (the CSP's `form-action`).
#[derive(Debug, Clone, Copy)]
pub(super) enum FormTarget<'a> {
    /// The page has no form.
    Nowhere,
    /// Back here, and from here on to the origin of the redirect that answers the form
    /// (browsers apply `form-action` to it too), when there is one.
    Here { then: Option<&'a str> },
}

/// An HTML page with the headers every page of the flow carries; `csrf` is the value
/// of the CSRF cookie to set, for a page with a form.
pub(super) fn page(
    status: StatusCode,
    title: &str,
    body: Markup,
    form_target: FormTarget<'_>,
    csrf: Option<&str>,
) -> Response<Body> {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) }
                // A constant, allowed by its hash in the CSP; a `<style>` is raw text,
                // which escaping would change.
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(html.into_string())));
    *response.status_mut() = status;
    let form_action = match form_target {
        FormTarget::Nowhere => "'none'".to_owned(),
        FormTarget::Here { then: None } => "'self'".to_owned(),
        FormTarget::Here { then: Some(origin) } => format!("'self' {origin}"),
    };
    let csp = format!(
        "default-src 'none'; style-src {}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
        style_hash()
    );
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert("content-security-policy", value);
    }
    if let Some(csrf) = csrf {
        let cookie = format!("{CSRF_COOKIE}={csrf}; Path=/; Secure; HttpOnly; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert(SET_COOKIE, value);
        }
    }
    response
}

pub(super) fn error_page(heading: &str, message: &str) -> Response<Body> {
    let body = html! {
        h1 { (heading) }
        p.error role="alert" { (message) }
    };
    page(
        StatusCode::BAD_REQUEST,
        heading,
        body,
        FormTarget::Nowhere,
        None,
    )
}

/// `scheme://host[:port]` of an absolute URI.
pub(super) fn origin_of(uri: &str) -> String {
    let after_scheme = uri.find("://").map(|i| i + 3).unwrap_or(0);
    let end = uri[after_scheme..]
        .find(['/', '?', '#'])
        .map(|i| after_scheme + i)
        .unwrap_or(uri.len());
    uri[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_page_says_is_escaped() {
        let response = error_page("Sign-in cannot continue", "<a href=\"x\">&</a>");
        let body = response.into_body().into_inner().expect("a body");
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            html.contains("&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"),
            "{html}"
        );
        // The stylesheet is the one the CSP's hash allows, byte for byte.
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
    }

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(
            origin_of("https://app.example:8443/cb?x=1"),
            "https://app.example:8443"
        );
        assert_eq!(origin_of("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
    }
}
