//! `GET` and `POST /oauth2/authorize`: the sign-in page of the authorization code flow
//! (RFC 6749 §4.1, RFC 7636), and single sign-on. Server-rendered HTML that works
//! without JavaScript, from the console's template engine, which escapes every value.
//!
//! A browser with a live session of the client's tenant gets its code at once, as
//! `prompt` and `max_age` allow; a sign-in on the page starts (or renews) that session
//! and sets its cookie. The page's form is protected as `flow_page` describes.

use super::flow_page::{
    csrf_cookie, csrf_matches, error_page, origin_of, page, redirect, FormTarget,
};
use super::form::{has_media_type, Form};
use super::request_log::RequestLog;
use super::{set_sign_in_cookie, sign_in_cookie, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::authorize::{AuthorizationRequest, AuthorizeParams, Refused, Unattended};
use crate::service::token_text::random_string;
use crate::service::Gateway;
use bytes::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use maud::html;
use secrecy::{ExposeSecret, SecretString};

/// The heading of every page that ends the sign-in.
const CANNOT_CONTINUE: &str = "Sign-in cannot continue";

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
            CANNOT_CONTINUE,
            "The request is malformed: a parameter is repeated or not valid UTF-8.",
        ));
    };
    match gateway.authorization_request(tenant, &params(&query)).await {
        Ok(authorization) => {
            log.identify(authorization.client_id());
            let cookie = sign_in_cookie(request.headers(), &authorization.tenant);
            let session = gateway
                .sign_in_session(&authorization.tenant, cookie.as_deref())
                .await?;
            match gateway
                .answer_in_session(&authorization, session.as_ref())
                .await?
            {
                Unattended::Code(location) => Ok(redirect(StatusCode::FOUND, &location)),
                Unattended::Refused(refused) => refusal(refused),
                Unattended::SignInPage => {
                    // Keep a valid cookie, so that several open sign-in tabs all work.
                    let csrf = csrf_cookie(request).unwrap_or_else(|| random_string(32));
                    Ok(sign_in_page(&authorization, path, &csrf, "", None))
                }
            }
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
        return Ok(error_page(
            CANNOT_CONTINUE,
            "The sign-in form was not sent as a form.",
        ));
    }
    let Ok(form) = Form::parse(request.body()) else {
        return Ok(error_page(
            CANNOT_CONTINUE,
            "The sign-in form is malformed.",
        ));
    };
    let authorization = match gateway.authorization_request(tenant, &params(&form)).await {
        Ok(authorization) => authorization,
        Err(refused) => return refusal(refused),
    };
    log.identify(authorization.client_id());
    if !csrf_matches(request, form.get("csrf")) {
        return Ok(error_page(CANNOT_CONTINUE, "This sign-in form has expired or did not come from this site. Go back to the application and start again."));
    }
    if form.get("action") == Some("deny") {
        return refusal(authorization.denied());
    }
    let csrf = csrf_cookie(request).unwrap_or_default();
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
    let tenant = &authorization.tenant;
    let cookie = sign_in_cookie(request.headers(), tenant);
    let current = gateway.sign_in_session(tenant, cookie.as_deref()).await?;
    let started = gateway
        .start_sign_in_session(tenant, user, current.as_ref())
        .await?;
    let location = gateway
        .issue_code(&authorization, &started.signed_in)
        .await?;
    let mut response = redirect(StatusCode::SEE_OTHER, &location);
    set_sign_in_cookie(&mut response, tenant, Some(started.cookie.expose_secret()));
    Ok(response)
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
        id_token_hint: get("id_token_hint"),
        request: get("request"),
        request_uri: get("request_uri"),
        registration: get("registration"),
    }
}

fn refusal(refused: Refused) -> Result<Response<Body>, ApiError> {
    match refused {
        Refused::Page(message) => Ok(error_page(CANNOT_CONTINUE, &message)),
        Refused::Redirect(error) => Ok(redirect(StatusCode::FOUND, &error.location())),
        Refused::Internal(e) => Err(e.into()),
    }
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
                button.primary type="submit" name="action" value="approve" { "Sign in" }
                button.secondary type="submit" name="action" value="deny" formnovalidate { "Cancel" }
            }
        }
    };
    page(
        StatusCode::OK,
        "Sign in",
        body,
        FormTarget::Here {
            // The answer to the form redirects to the client.
            then: Some(&origin_of(&a.redirect_uri)),
        },
        Some(csrf),
    )
}
