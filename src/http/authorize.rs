//! `GET` and `POST /oauth2/authorize`: the sign-in page of the authorization code flow
//! (RFC 6749 §4.1, RFC 7636). Server-rendered HTML that works without JavaScript, from
//! the console's template engine, which escapes every value.
//!
//! CSRF: the page sets a random value in a `__Host-` cookie (Secure, HttpOnly,
//! SameSite=Lax, so no other site or subdomain can set or send it) and repeats it in a
//! hidden field; a POST whose field does not equal its cookie issues no code. Nothing
//! is kept on the server, so any instance can take the POST.

use super::form::{has_media_type, Form};
use super::request_log::RequestLog;
use super::{ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::authorize::{AuthorizationRequest, AuthorizeParams, Refused};
use crate::service::token_text::random_string;
use crate::service::Gateway;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

const CSRF_COOKIE: &str = "__Host-portcullis_csrf";

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
button[value=approve]{background:#1d4ed8;color:#fff}\
button[value=deny]{background:#fff;color:#1d4ed8}";

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

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    if request.method() == Method::GET {
        show_sign_in(gateway, tenant, request, path, log).await
    } else {
        sign_in(gateway, tenant, request, path, log).await
    }
}

/// `GET`: the sign-in page for a valid request, with a CSRF cookie.
async fn show_sign_in(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let Ok(query) = Form::parse(request.uri().query().unwrap_or_default().as_bytes()) else {
        return Ok(error_page(
            "The request is malformed: a parameter is repeated or not valid UTF-8.",
        ));
    };
    match gateway.authorization_request(tenant, &params(&query)).await {
        Ok(authorization) => {
            log.identify(authorization.client_id());
            // Keep a valid cookie, so that several open sign-in tabs all work.
            let csrf = csrf_cookie(request).unwrap_or_else(|| random_string(32));
            Ok(sign_in_page(&authorization, path, &csrf, "", None))
        }
        Err(refused) => refusal(refused),
    }
}

/// `POST`: the filled-in form. A code goes to the client after a good sign-in; the
/// page comes back, with one message for every kind of failure, after a bad one.
async fn sign_in(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    if !has_media_type(request, "application/x-www-form-urlencoded") {
        return Ok(error_page("The sign-in form was not sent as a form."));
    }
    let Ok(form) = Form::parse(request.body()) else {
        return Ok(error_page("The sign-in form is malformed."));
    };
    let authorization = match gateway.authorization_request(tenant, &params(&form)).await {
        Ok(authorization) => authorization,
        Err(refused) => return refusal(refused),
    };
    log.identify(authorization.client_id());
    let cookie = csrf_cookie(request);
    let csrf_ok = match (cookie.as_deref(), form.get("csrf")) {
        (Some(cookie), Some(field)) => bool::from(cookie.as_bytes().ct_eq(field.as_bytes())),
        _ => false,
    };
    if !csrf_ok {
        return Ok(error_page("This sign-in form has expired or did not come from this site. Go back to the application and start again."));
    }
    if form.get("action") == Some("deny") {
        return refusal(authorization.denied());
    }
    let csrf = cookie.unwrap_or_default();
    let username = form.get("username").unwrap_or_default().trim();
    let password = SecretString::from(form.get("password").unwrap_or_default().to_owned());
    let signed_in = gateway
        .sign_in(&authorization, username, &password, &log.origin)
        .await?;
    let Some(user) = signed_in else {
        // The same words for an unknown user, a wrong password, a locked or disabled
        // account: the page never says which.
        let message = "The username or password is wrong.";
        return Ok(sign_in_page(
            &authorization,
            path,
            &csrf,
            username,
            Some(message),
        ));
    };
    let location = gateway.issue_code(&authorization, &user).await?;
    Ok(redirect(StatusCode::SEE_OTHER, &location))
}

fn params(form: &Form) -> AuthorizeParams {
    let get = |name: &str| form.get(name).map(str::to_owned);
    AuthorizeParams {
        response_type: get("response_type"),
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        scope: get("scope"),
        state: get("state"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        nonce: get("nonce"),
        prompt: get("prompt"),
        max_age: get("max_age"),
    }
}

fn refusal(refused: Refused) -> Result<Response<Body>, ApiError> {
    match refused {
        Refused::Page(message) => Ok(error_page(&message)),
        Refused::Redirect(error) => Ok(redirect(StatusCode::FOUND, &error.location())),
        Refused::Internal(e) => Err(e.into()),
    }
}

/// The CSRF cookie's value, when it has the shape this server gives it.
fn csrf_cookie(request: &Request<Bytes>) -> Option<String> {
    super::cookie(request.headers(), CSRF_COOKIE).filter(|v| {
        v.len() == 43
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn redirect(status: StatusCode, location: &str) -> Response<Body> {
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

/// An HTML page with the headers every page of the flow carries.
fn page(
    status: StatusCode,
    title: &str,
    body: Markup,
    form_target: Option<&str>,
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
    // The form posts here; the redirect after it goes to the client, which
    // `form-action` must allow too (browsers apply it to the redirect).
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'none'".to_owned(),
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

fn error_page(message: &str) -> Response<Body> {
    let body = html! {
        h1 { "Sign-in cannot continue" }
        p.error role="alert" { (message) }
    };
    page(StatusCode::BAD_REQUEST, "Sign-in error", body, None, None)
}

fn sign_in_page(
    a: &AuthorizationRequest,
    action: &str,
    csrf: &str,
    username: &str,
    message: Option<&str>,
) -> Response<Body> {
    let mut hidden = vec![
        ("response_type", "code"),
        ("client_id", a.client_id()),
        ("csrf", csrf),
    ];
    if a.redirect_uri_given {
        hidden.push(("redirect_uri", &a.redirect_uri));
    }
    if !a.scope.is_empty() {
        hidden.push(("scope", &a.scope));
    }
    if let Some(state) = &a.state {
        hidden.push(("state", state));
    }
    if let Some(challenge) = &a.code_challenge {
        hidden.push(("code_challenge", challenge));
        hidden.push(("code_challenge_method", "S256"));
    }
    if let Some(nonce) = &a.nonce {
        hidden.push(("nonce", nonce));
    }
    // "Sign in" comes first so that Enter submits it (the first submit button is the
    // form's default); the stylesheet shows it on the right.
    let body = html! {
        p.tenant { (a.tenant.domain.as_str()) }
        h1 { "Sign in to continue" }
        p { strong { (a.client_id()) } " wants to act on your behalf." }
        @if !a.scope.is_empty() {
            p { "It asks for:" }
            ul aria-label="Requested scopes" { @for scope in a.scope.split(' ') { li { (scope) } } }
        }
        @if let Some(message) = message { p.error role="alert" { (message) } }
        form method="post" action=(action) {
            @for (name, value) in &hidden { input type="hidden" name=(name) value=(value); }
            label for="username" { "Username" }
            input id="username" name="username" type="text" autocomplete="username" autocapitalize="none"
                spellcheck="false" required autofocus value=(username);
            label for="password" { "Password" }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            div.actions {
                button type="submit" name="action" value="approve" { "Sign in" }
                button type="submit" name="action" value="deny" formnovalidate { "Cancel" }
            }
        }
    };
    page(
        StatusCode::OK,
        "Sign in",
        body,
        Some(&origin_of(&a.redirect_uri)),
        Some(csrf),
    )
}

/// `scheme://host[:port]` of an absolute URI.
fn origin_of(uri: &str) -> String {
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
        let response = error_page("<a href=\"x\">&</a>");
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
