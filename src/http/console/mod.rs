//! The admin console at `/console/` and `/t/{domain}/console/`: server-rendered pages
//! over the same use cases as the admin API, with no script at all.
//!
//! | path (after `console/`)          | methods   | mirrors (admin API)          |
//! |----------------------------------|-----------|------------------------------|
//! | (empty): the first page          | GET       |                              |
//! | `style.css`, `callback`, `signed-out` | GET  | (no session)                 |
//! | `sign-out`                       | POST      |                              |
//! | `users?q=&enabled=&locked=&after=` | GET     | `GET users`                  |
//! | `users/new`                      | GET, POST | `POST users`                 |
//! | `users/bulk?action=&user:{name}=on` | GET, POST | `POST users/bulk`         |
//! | `users/{u}`                      | GET       | `GET users/{u}`              |
//! | `users/{u}/roles`                | POST      | `PUT users/{u}/roles`        |
//! | `users/{u}/enabled`              | POST      | `PUT users/{u}/enabled`      |
//! | `users/{u}/unlock`               | POST      | `POST users/{u}/unlock`      |
//! | `users/{u}/password`             | POST      | `PUT users/{u}/password`     |
//! | `users/{u}/profile`              | POST      | `PUT users/{u}/profile`      |
//! | `users/{u}/revoke`               | POST      | `POST tokens/revoke`         |
//! | `users/{u}/delete`               | GET, POST | `DELETE users/{u}`           |
//! | `roles?q=&after=`                | GET       | `GET roles`                  |
//! | `roles/new`                      | GET, POST | `POST roles`                 |
//! | `roles/{r}`                      | GET, POST | `GET`, `PUT roles/{r}`       |
//! | `roles/{r}/delete`               | GET, POST | `DELETE roles/{r}`           |
//! | `clients?q=&after=`              | GET       | `GET clients`                |
//! | `clients/new`                    | GET, POST | `POST clients`               |
//! | `clients/{c}`                    | GET, POST | `GET`, `PATCH clients/{c}`   |
//! | `clients/{c}/secret`             | GET, POST | `POST clients/{c}/secret`    |
//! | `clients/{c}/unlock`             | POST      | `POST clients/{c}/unlock`    |
//! | `clients/{c}/delete`             | GET, POST | `DELETE clients/{c}`         |
//! | `resources`                      | GET, POST | `GET`, `PUT resources`       |
//! | `resources/test?path=&method=`   | GET       | `GET resources`              |
//! | `tokens`                         | GET       | `POST tokens/lookup`         |
//! | `tokens/lookup`                  | POST      | `POST tokens/lookup`         |
//! | `tokens/revoke`                  | POST      | `POST tokens/revoke`         |
//! | `audit?action=&actor=&target=&since=&until=&after=` | GET | `GET audit`     |
//! | `audit/export?…` (CSV)           | GET       | `GET audit`                  |
//! | `keys`                           | GET       | `GET keys`                   |
//! | `keys/rotate`                    | GET, POST | `POST keys/rotate`           |
//! | `settings`                       | GET, POST | `GET`, `PUT settings`        |
//! | `tenants?q=&after=` (super tenant) | GET     | `GET tenants`                |
//! | `tenants/new`                    | GET, POST | `POST tenants`               |
//! | `tenants/{d}/deactivate`         | GET, POST | `DELETE tenants/{d}`         |
//!
//! Every page is authorised as the admin API call it mirrors, through the tenant's
//! resource rules. A request without a live session of this tenant goes through the
//! tenant's sign-in page. A POST must come from this site (`Origin`,
//! `Sec-Fetch-Site`) and carry the session's synchronizer token; dangerous actions also
//! need a sign-in within the last five minutes, and ask to sign in again otherwise.

mod audit;
mod clients;
mod keys;
mod page;
mod resources;
mod roles;
mod settings;
mod tenants;
mod tokens;
mod users;

use super::form::{has_media_type, percent_decode, Form};
use super::request_log::RequestLog;
use super::{ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::admin::ListRequest;
use crate::service::console::{console_path, ConsoleSession, PasswordAge};
use crate::service::{Gateway, Origin};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use maud::Markup;
use secrecy::ExposeSecret;
use std::sync::Arc;

const SESSION_COOKIE: &str = "__Host-portcullis_console";
const FLOW_COOKIE: &str = "__Host-portcullis_console_flow";
const STYLESHEET: &str = include_str!("console.css");
/// No script, no frame, no form to another site, no base to move links elsewhere.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// What every console page works with.
pub(super) struct Console<'a> {
    gateway: &'a Gateway,
    tenant: &'a Arc<Tenant>,
    request: &'a Request<Bytes>,
    origin: &'a Origin,
    /// `/console` or `/t/{domain}/console`.
    base: String,
}

/// A page request with a live session.
pub(super) struct Signed<'a> {
    console: Console<'a>,
    session: ConsoleSession,
}

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: &Arc<Tenant>,
    request: &Request<Bytes>,
    rest: Option<&str>,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let origin = log.origin.clone();
    let console = Console {
        gateway,
        tenant,
        request,
        origin: &origin,
        base: console_path(tenant),
    };
    // `/console` itself: the pages are relative to `/console/`.
    let Some(rest) = rest else {
        return Ok(redirect(&format!("{}/", console.base)));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let method = request.method();
    match (method, segments.as_slice()) {
        (&Method::GET, ["style.css"]) => return Ok(stylesheet()),
        (&Method::GET, ["callback"]) => return console.callback().await,
        (&Method::GET, ["signed-out"]) => return Ok(console.signed_out()),
        _ => {}
    }
    let session = match console.cookie(SESSION_COOKIE) {
        Some(cookie) => gateway.console_session(tenant, &cookie).await?,
        None => None,
    };
    let Some(session) = session else {
        return Ok(if method == Method::GET {
            console.sign_in_first()
        } else {
            console.message_page(
                StatusCode::FORBIDDEN,
                "Signed out",
                "Your console session has ended. Sign in again, then repeat what you were doing.",
            )
        });
    };
    log.identify(&session.signed_in_as());
    let signed = Signed { console, session };
    if method == Method::POST {
        if let Some(refusal) = signed.refuse_post() {
            return Ok(refusal);
        }
    }
    let answer = signed.route(method, &segments).await;
    Ok(answer.unwrap_or_else(|e| signed.error_page(e)))
}

impl Signed<'_> {
    async fn route(&self, method: &Method, segments: &[&str]) -> Result<Response<Body>, ApiError> {
        let name = |raw: &str| percent_decode(raw).ok_or(ApiError::NotFound);
        match (method.clone(), segments) {
            (Method::GET, [""]) => Ok(self.home()),
            (Method::POST, ["sign-out"]) => self.sign_out().await,
            (Method::GET, ["users"]) => self.users().await,
            (Method::GET, ["users", "new"]) => self.new_user_form().await,
            (Method::POST, ["users", "new"]) => self.create_user().await,
            (Method::GET, ["users", "bulk"]) => self.confirm_bulk(),
            (Method::POST, ["users", "bulk"]) => self.bulk().await,
            (Method::GET, ["users", u]) => self.user(&name(u)?, None).await,
            (Method::POST, ["users", u, "roles"]) => self.save_roles(&name(u)?).await,
            (Method::POST, ["users", u, "enabled"]) => self.set_enabled(&name(u)?).await,
            (Method::POST, ["users", u, "unlock"]) => self.unlock(&name(u)?).await,
            (Method::POST, ["users", u, "password"]) => self.set_password(&name(u)?).await,
            (Method::POST, ["users", u, "profile"]) => self.save_profile(&name(u)?).await,
            (Method::POST, ["users", u, "revoke"]) => self.revoke_grant(&name(u)?).await,
            (Method::GET, ["users", u, "delete"]) => self.confirm_delete(&name(u)?),
            (Method::POST, ["users", u, "delete"]) => self.delete_user(&name(u)?).await,
            (Method::GET, ["roles"]) => self.roles().await,
            (Method::GET, ["roles", "new"]) => self.new_role_form(),
            (Method::POST, ["roles", "new"]) => self.create_role().await,
            (Method::GET, ["roles", r]) => self.role(&name(r)?).await,
            (Method::POST, ["roles", r]) => self.update_role(&name(r)?).await,
            (Method::GET, ["roles", r, "delete"]) => self.confirm_delete_role(&name(r)?),
            (Method::POST, ["roles", r, "delete"]) => self.delete_role(&name(r)?).await,
            (Method::GET, ["clients"]) => self.clients().await,
            (Method::GET, ["clients", "new"]) => self.new_client_form(),
            (Method::POST, ["clients", "new"]) => self.create_client().await,
            (Method::GET, ["clients", c]) => self.client(&name(c)?).await,
            (Method::POST, ["clients", c]) => self.edit_client(&name(c)?).await,
            (Method::GET, ["clients", c, "secret"]) => self.confirm_rotate_secret(&name(c)?),
            (Method::POST, ["clients", c, "secret"]) => self.rotate_secret(&name(c)?).await,
            (Method::POST, ["clients", c, "unlock"]) => self.unlock_client(&name(c)?).await,
            (Method::GET, ["clients", c, "delete"]) => self.confirm_delete_client(&name(c)?),
            (Method::POST, ["clients", c, "delete"]) => self.delete_client(&name(c)?).await,
            (Method::GET, ["resources"]) => self.resources().await,
            (Method::POST, ["resources"]) => self.save_resources().await,
            (Method::GET, ["resources", "test"]) => self.test_path().await,
            (Method::GET, ["tokens"]) => self.token_form(),
            (Method::POST, ["tokens", "lookup"]) => self.lookup_token().await,
            (Method::POST, ["tokens", "revoke"]) => self.revoke_token_grant().await,
            (Method::GET, ["audit"]) => self.audit().await,
            (Method::GET, ["audit", "export"]) => self.export_audit().await,
            (Method::GET, ["keys"]) => self.keys().await,
            (Method::GET, ["keys", "rotate"]) => self.confirm_rotate_key(),
            (Method::POST, ["keys", "rotate"]) => self.rotate_key().await,
            (Method::GET, ["settings"]) => self.settings(),
            (Method::POST, ["settings"]) => self.save_settings().await,
            (Method::GET, ["tenants"]) => self.tenants().await,
            (Method::GET, ["tenants", "new"]) => self.new_tenant_form(),
            (Method::POST, ["tenants", "new"]) => self.create_tenant().await,
            (Method::GET, ["tenants", d, "deactivate"]) => self.confirm_deactivate(&name(d)?),
            (Method::POST, ["tenants", d, "deactivate"]) => self.deactivate(&name(d)?).await,
            _ => Err(ApiError::NotFound),
        }
    }

    fn origin(&self) -> &Origin {
        self.console.origin
    }

    /// A POST is answered only when it came from this site and carries this session's
    /// synchronizer token; otherwise this 403 page says why in words.
    fn refuse_post(&self) -> Option<Response<Body>> {
        let headers = self.console.request.headers();
        // Every value counts: a second header must not hide the first.
        let values = |name: &str| headers.get_all(name).iter().map(|v| v.to_str().ok());
        let cross_site =
            values("sec-fetch-site").any(|site| !matches!(site, Some("same-origin" | "none")));
        let foreign_origin =
            values("origin").any(|origin| origin != Some(self.console.site_origin()));
        let form = self.form().ok();
        let token_ok = form
            .as_ref()
            .and_then(|f| f.get("csrf"))
            .is_some_and(|sent| self.session.csrf_matches(sent));
        let refused = cross_site || foreign_origin || !token_ok;
        refused.then(|| {
            self.console.message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form did not come from this console, or its page is too old. Go back, \
                 reload the page and try again.",
            )
        })
    }

    /// The POSTed form.
    fn form(&self) -> Result<Form, ApiError> {
        if !has_media_type(self.console.request, "application/x-www-form-urlencoded") {
            return Err(ApiError::BadRequest(
                "the form was not sent as a form".into(),
            ));
        }
        Form::parse(self.console.request.body())
    }

    /// One page of a searchable list, as the page's query asks: its search (`q`) and the
    /// request for it.
    fn list_query(query: &Form) -> (Option<&str>, ListRequest) {
        let q = query.non_empty("q");
        let request = ListRequest {
            limit: Some(page::PAGE_SIZE),
            after: query.non_empty("after").map(str::to_owned),
            q: q.map(str::to_owned),
        };
        (q, request)
    }

    /// The query string of a GET page.
    fn query(&self) -> Result<Form, ApiError> {
        Form::parse(
            self.console
                .request
                .uri()
                .query()
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    async fn sign_out(&self) -> Result<Response<Body>, ApiError> {
        let gateway = self.console.gateway;
        gateway
            .sign_out_of_console(
                &self.session,
                super::sign_in_cookie(self.console.request.headers(), self.console.tenant)
                    .as_deref(),
                self.origin(),
            )
            .await?;
        let mut response = redirect(&format!("{}/signed-out", self.console.base));
        set_cookie(&mut response, &expired_cookie(SESSION_COOKIE));
        super::set_sign_in_cookie(&mut response, self.console.tenant, None);
        Ok(response)
    }

    /// A dangerous action's precondition: a sign-in within the last five minutes.
    /// Otherwise the answer sends the browser to sign in again, back to `return_to`.
    fn recent_sign_in(&self, return_to: &str) -> Option<Response<Body>> {
        if self.session.signed_in_recently() {
            return None;
        }
        Some(self.console.start_sign_in(return_to, PasswordAge::Recent))
    }

    /// The confirmation page of a dangerous action: `question`, then a button that POSTs
    /// to `path` (this page's own path) and a way back to `cancel`. Like the action
    /// itself, it needs a recent sign-in.
    fn confirm(
        &self,
        section: page::Section,
        title: &str,
        question: Markup,
        path: &str,
        button: &str,
        cancel: &str,
    ) -> Response<Body> {
        let base = &self.console.base;
        if let Some(sign_in) = self.recent_sign_in(&format!("{base}/{path}")) {
            return sign_in;
        }
        let body = maud::html! {
            (question)
            form method="post" action={ (base) "/" (path) } {
                (page::csrf(&self.session))
                div.actions {
                    button.danger type="submit" { (button) }
                    a href={ (base) "/" (cancel) } { "Cancel" }
                }
            }
        };
        self.page(StatusCode::OK, title, Some(section), body)
    }

    /// A dangerous action at `path` goes ahead only after a recent sign-in; otherwise
    /// this answer sends the browser to sign in again, back to its confirmation page.
    fn needs_sign_in(&self, path: &str) -> Option<Response<Body>> {
        self.recent_sign_in(&format!("{}/{path}", self.console.base))
    }

    /// The page for a failed action: the reason in words, with the status the API
    /// would answer.
    fn error_page(&self, error: ApiError) -> Response<Body> {
        let (status, words) = error.for_people();
        let title = match status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Not changed",
            s if s.is_server_error() => "Something went wrong",
            _ => "Not done",
        };
        let body = page::message(&words);
        self.page(status, title, None, body)
    }

    /// A full page of this session: header, navigation, `body`.
    fn page(
        &self,
        status: StatusCode,
        title: &str,
        current: Option<page::Section>,
        body: Markup,
    ) -> Response<Body> {
        let frame = page::Frame {
            base: &self.console.base,
            tenant: self.console.tenant.domain.as_str(),
            session: &self.session,
            current,
        };
        html(status, page::signed_in(&frame, title, body))
    }

    fn home(&self) -> Response<Body> {
        let body = page::home(&self.console.base, &self.session);
        self.page(StatusCode::OK, "Console", None, body)
    }

    /// After a change: back to `path` with a note (POST, redirect, GET).
    fn done(&self, path: &str, note: &str) -> Response<Body> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("done", note)
            .finish();
        redirect(&format!("{}/{path}?{query}", self.console.base))
    }
}

impl Console<'_> {
    /// The value of a cookie the request carries.
    fn cookie(&self, name: &str) -> Option<String> {
        super::cookie(self.request.headers(), name)
    }

    /// `scheme://host[:port]` of the public URL: the only `Origin` a POST may carry.
    fn site_origin(&self) -> &str {
        let issuer = &self.tenant.issuer;
        let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
        let end = issuer[after_scheme..]
            .find('/')
            .map_or(issuer.len(), |i| after_scheme + i);
        &issuer[..end]
    }

    /// Sends the browser through the tenant's sign-in page, back to this page after.
    fn sign_in_first(&self) -> Response<Body> {
        let uri = self.request.uri();
        let here = uri
            .path_and_query()
            .map_or(uri.path(), |p| p.as_str())
            .to_owned();
        self.start_sign_in(&here, PasswordAge::WithinSessionLifetime)
    }

    fn start_sign_in(&self, return_to: &str, age: PasswordAge) -> Response<Body> {
        let started = self
            .gateway
            .start_console_sign_in(self.tenant, return_to, age);
        let mut response = redirect(&started.location);
        let cookie = format!(
            "{FLOW_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600",
            started.flow_cookie
        );
        set_cookie(&mut response, &cookie);
        response
    }

    /// `callback?code=&state=`: the sign-in page's answer. The code is redeemed here,
    /// and the browser gets only the session cookie.
    async fn callback(&self) -> Result<Response<Body>, ApiError> {
        let query = Form::parse(self.request.uri().query().unwrap_or_default().as_bytes())?;
        if query.get("error").is_some() {
            return Ok(self.message_page(
                StatusCode::OK,
                "Not signed in",
                "The sign-in was cancelled. Open the console again to sign in.",
            ));
        }
        let (Some(code), Some(state)) = (query.get("code"), query.get("state")) else {
            return Err(ApiError::BadRequest(
                "the callback needs code and state".into(),
            ));
        };
        let flow = self.cookie(FLOW_COOKIE);
        let current = self.cookie(SESSION_COOKIE);
        let started = self
            .gateway
            .finish_console_sign_in(
                self.tenant,
                flow.as_deref(),
                code,
                state,
                current.as_deref(),
                self.origin,
            )
            .await?;
        let Some(started) = started else {
            let mut response = self.message_page(
                StatusCode::BAD_REQUEST,
                "Not signed in",
                "This sign-in took too long, was already used, or was started elsewhere. \
                 Open the console again to sign in.",
            );
            set_cookie(&mut response, &expired_cookie(FLOW_COOKIE));
            return Ok(response);
        };
        let mut response = redirect(&started.return_to);
        set_cookie(&mut response, &expired_cookie(FLOW_COOKIE));
        let session = format!(
            "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
            started.cookie.expose_secret()
        );
        set_cookie(&mut response, &session);
        Ok(response)
    }

    fn signed_out(&self) -> Response<Body> {
        let body = page::signed_out(&self.base);
        html(StatusCode::OK, page::bare("Signed out", body))
    }

    /// A page outside a session, saying `words`.
    fn message_page(&self, status: StatusCode, title: &str, words: &str) -> Response<Body> {
        let body = page::message_with_sign_in(&self.base, words);
        html(status, page::bare(title, body))
    }
}

/// An HTML page, with the headers every console page carries.
fn html(status: StatusCode, markup: Markup) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(markup.into_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(&mut response);
    response
}

fn secure_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
}

/// A 303 to `location` (after a POST, the browser GETs it).
fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    secure_headers(&mut response);
    response
}

fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

fn expired_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The stylesheet: the same for every tenant, and cacheable.
fn stylesheet() -> Response<Body> {
    let mut response = super::cacheable(
        "text/css; charset=utf-8",
        Bytes::from_static(STYLESHEET.as_bytes()),
        "public, max-age=3600",
    );
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
