//! `GET` and `POST /oauth2/logout`: the `end_session_endpoint` of OpenID Connect
//! RP-Initiated Logout 1.0. An application sends the browser here to end its single
//! sign-on session; the checks are `service::logout`'s. When the request's
//! `id_token_hint` does not name the browser's session, a page asks the user first,
//! with a form protected as `flow_page` describes.

use super::flow_page::{
    csrf_cookie, csrf_matches, error_page, origin_of, page, redirect, FormTarget,
};
use super::form::{has_media_type, Form};
use super::request_log::RequestLog;
use super::{set_sign_in_cookie, sign_in_cookie, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::authorize::Refused;
use crate::service::logout::{LogoutParams, LogoutRequest};
use crate::service::session::SignInSession;
use crate::service::token_text::random_string;
use crate::service::Gateway;
use bytes::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use maud::html;

const CANNOT_CONTINUE: &str = "Sign-out cannot continue";

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let posted = request.method() == Method::POST;
    let sent = if posted {
        if !has_media_type(request, "application/x-www-form-urlencoded") {
            return Ok(error_page(
                CANNOT_CONTINUE,
                "The request was not sent as a form.",
            ));
        }
        Form::parse(request.body())
    } else {
        Form::parse(request.uri().query().unwrap_or_default().as_bytes())
    };
    let Ok(form) = sent else {
        return Ok(error_page(
            CANNOT_CONTINUE,
            "The request is malformed: a parameter is repeated or not valid UTF-8.",
        ));
    };
    let logout = match gateway.logout_request(tenant, &params(&form)).await {
        Ok(logout) => logout,
        Err(Refused::Page(message)) => return Ok(error_page(CANNOT_CONTINUE, &message)),
        // A logout's checks answer with pages only; a redirect would be the client's own.
        Err(Refused::Redirect(error)) => return Ok(redirect(StatusCode::FOUND, &error.location())),
        Err(Refused::Internal(e)) => return Err(e.into()),
    };
    if let Some(client_id) = &logout.client_id {
        log.identify(client_id);
    }
    let cookie = sign_in_cookie(request.headers(), tenant);
    let Some(session) = gateway.sign_in_session(tenant, cookie.as_deref()).await? else {
        // Nothing to end: the browser is signed out already.
        return Ok(signed_out(tenant, &logout));
    };
    // The user's answer on the page below: only a form this site gave them counts.
    let answered = posted && csrf_matches(request, form.get("csrf"));
    match form.get("action").filter(|_| answered) {
        Some("stay") => Ok(still_signed_in(tenant)),
        Some("sign_out") => end(gateway, tenant, &session, &logout, log).await,
        _ if logout.names(&session) => end(gateway, tenant, &session, &logout, log).await,
        _ => {
            let csrf = csrf_cookie(request).unwrap_or_else(|| random_string(32));
            Ok(confirmation(tenant, &session, &logout, &form, path, &csrf))
        }
    }
}

fn params(form: &Form) -> LogoutParams {
    let get = |name: &str| form.get(name).map(str::to_owned);
    LogoutParams {
        id_token_hint: get("id_token_hint"),
        client_id: get("client_id"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
    }
}

async fn end(
    gateway: &Gateway,
    tenant: &Tenant,
    session: &SignInSession,
    logout: &LogoutRequest,
    log: &RequestLog,
) -> Result<Response<Body>, ApiError> {
    gateway
        .end_sign_in_session(tenant, session, Some(&log.origin))
        .await?;
    Ok(signed_out(tenant, logout))
}

/// Where a signed-out browser goes: the application's registered URI, or a page that
/// says so. The session cookie is cleared either way.
fn signed_out(tenant: &Tenant, logout: &LogoutRequest) -> Response<Body> {
    let mut response = match &logout.return_to {
        Some(uri) => redirect(StatusCode::SEE_OTHER, uri),
        None => {
            let body = html! {
                p.tenant { (tenant.domain.as_str()) }
                h1 { "You have signed out" }
                p { "You are no longer signed in to " (tenant.domain.as_str()) ". You can close this window." }
            };
            page(
                StatusCode::OK,
                "Signed out",
                body,
                FormTarget::Nowhere,
                None,
            )
        }
    };
    set_sign_in_cookie(&mut response, tenant, None);
    response
}

fn still_signed_in(tenant: &Tenant) -> Response<Body> {
    let body = html! {
        p.tenant { (tenant.domain.as_str()) }
        h1 { "You are still signed in" }
        p { "Nothing was changed. You can close this window." }
    };
    page(
        StatusCode::OK,
        "Still signed in",
        body,
        FormTarget::Nowhere,
        None,
    )
}

/// The question when the request does not prove it comes from the session's own
/// application: sign out, or stay.
fn confirmation(
    tenant: &Tenant,
    session: &SignInSession,
    logout: &LogoutRequest,
    form: &Form,
    action: &str,
    csrf: &str,
) -> Response<Body> {
    let carried = [
        "id_token_hint",
        "client_id",
        "post_logout_redirect_uri",
        "state",
    ];
    let hidden: Vec<(&str, &str)> = carried
        .iter()
        .filter_map(|name| form.get(name).map(|value| (*name, value)))
        .chain([("csrf", csrf)])
        .collect();
    let domain = tenant.domain.as_str();
    // "Sign out" comes first so that Enter submits it; the stylesheet shows it on the
    // right.
    let body = html! {
        p.tenant { (domain) }
        h1 { "Sign out?" }
        p { "You are signed in to " strong { (domain) } " as " strong { (session.signed_in.user.username) } "." }
        @if let Some(client_id) = &logout.client_id {
            p { strong { (client_id) } " asks to sign you out." }
        }
        form method="post" action=(action) {
            @for (name, value) in &hidden { input type="hidden" name=(name) value=(value); }
            div.actions {
                button.primary type="submit" name="action" value="sign_out" { "Sign out" }
                button.secondary type="submit" name="action" value="stay" { "Stay signed in" }
            }
        }
    };
    let then = logout.return_to.as_deref().map(origin_of);
    page(
        StatusCode::OK,
        "Sign out",
        body,
        FormTarget::Here {
            then: then.as_deref(),
        },
        Some(csrf),
    )
}
