//! The authorization endpoint (RFC 6749 §4.1) with PKCE (RFC 7636): validating an
//! authorization request, signing the user in, and issuing a code. The code's
//! exchange is a redemption (`redeem.rs`).

use super::authenticate::ClientScope;
use super::console::console_client;
use super::issue::allowed_scope;
use super::session::{SignInSession, SignedIn};
use super::token_text::{digest, grant_id, random_string};
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::client::{self, GrantType};
use crate::domain::console::CONSOLE_CLIENT_ID;
use crate::domain::openid::MAX_NONCE_CHARS;
use crate::domain::pkce::is_pkce_value;
use crate::domain::principal::sign_in_name_in;
use crate::domain::session::{sign_in_needed, Prompt, SignInNeeded};
use crate::domain::tenant::Tenant;
use crate::domain::token::TokenKind;
use crate::store::{ClientRecord, NewToken, UserRecord};
use secrecy::SecretString;
use std::sync::Arc;

/// The parameters of an authorization request as sent (query or form).
#[derive(Debug, Default, Clone)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    /// OpenID Connect's `prompt` and `max_age` (Core §3.1.2.1).
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    /// OpenID Connect's `id_token_hint`: the user the client expects.
    pub id_token_hint: Option<String>,
    /// Request objects and registration, which are refused (Core §3.1.2.6).
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub registration: Option<String>,
}

/// A request that passed every check: the sign-in page may be shown and a code issued.
#[allow(
    missing_debug_implementations,
    reason = "holds a client record and its secret hash"
)]
pub struct AuthorizationRequest {
    /// The client's tenant, where the user signs in and the code lives.
    pub tenant: Arc<Tenant>,
    pub(super) client: Arc<ClientRecord>,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Whether the request named it (then the exchange must repeat it).
    pub redirect_uri_given: bool,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    /// OpenID Connect's `nonce`, echoed in the ID token.
    pub nonce: Option<String>,
    /// OpenID Connect's `prompt` and `max_age`: whether a session's sign-in serves.
    pub prompt: Prompt,
    /// The subject of the request's `id_token_hint`: only a session of this user
    /// serves.
    hinted_subject: Option<String>,
}

/// How a request is answered before any page is shown.
#[derive(Debug)]
pub enum Unattended {
    /// The browser's session serves: the `Location` that carries the code.
    Code(String),
    /// `prompt=none`, and the password is needed: `login_required` to the client.
    Refused(Refused),
    /// The sign-in page asks for the password.
    SignInPage,
}

impl AuthorizationRequest {
    pub fn client_id(&self) -> &str {
        &self.client.client_id
    }
}

/// Why an authorization request is refused.
#[derive(Debug)]
pub enum Refused {
    /// The client or redirect URI cannot be trusted: an error page, never a redirect
    /// (RFC 6749 §4.1.2.1).
    Page(String),
    /// Anything else goes back to the client.
    Redirect(ErrorRedirect),
    /// The store failed.
    Internal(Error),
}

/// The error codes an authorization endpoint sends back to the client (RFC 6749
/// §4.1.2.1) that this one uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeError {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    /// `prompt=none`, and the user would have to sign in (OpenID Connect Core
    /// §3.1.2.6).
    LoginRequired,
    /// A request object, by value or by reference, or client registration in the
    /// request (Core §3.1.2.6): none is supported.
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
}

impl AuthorizeError {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeError::InvalidRequest => "invalid_request",
            AuthorizeError::UnauthorizedClient => "unauthorized_client",
            AuthorizeError::AccessDenied => "access_denied",
            AuthorizeError::UnsupportedResponseType => "unsupported_response_type",
            AuthorizeError::InvalidScope => "invalid_scope",
            AuthorizeError::LoginRequired => "login_required",
            AuthorizeError::RequestNotSupported => "request_not_supported",
            AuthorizeError::RequestUriNotSupported => "request_uri_not_supported",
            AuthorizeError::RegistrationNotSupported => "registration_not_supported",
        }
    }
}

#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    /// The client's tenant's issuer, sent as `iss` (RFC 9207).
    pub issuer: String,
    pub state: Option<String>,
    pub error: AuthorizeError,
    pub description: String,
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        Refused::Internal(e)
    }
}

/// Appends `pairs` to `uri`'s query, keeping what it already has (RFC 6749 §3.1.2).
pub(super) fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", query.finish())
}

impl ErrorRedirect {
    /// The `Location` of the error answer, with `iss` (RFC 9207).
    pub fn location(&self) -> String {
        let mut pairs = vec![
            ("error", self.error.as_str()),
            ("error_description", self.description.as_str()),
        ];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.issuer));
        with_query(&self.redirect_uri, &pairs)
    }
}

impl Gateway {
    /// Checks an authorization request at `path_tenant`: first the client and redirect
    /// URI (an error page when wrong), then everything else (a redirect when wrong).
    pub async fn authorization_request(
        &self,
        path_tenant: &Tenant,
        params: &AuthorizeParams,
    ) -> Result<AuthorizationRequest, Refused> {
        let (tenant, client) = self.requesting_client(path_tenant, params).await?;
        let (redirect_uri, given) = registered_redirect(&client, params)?;
        let state = params.state.clone().filter(|s| !s.is_empty());
        let refuse = |error, description: String| {
            Refused::Redirect(ErrorRedirect {
                redirect_uri: redirect_uri.clone(),
                issuer: tenant.issuer.clone(),
                state: state.clone(),
                error,
                description,
            })
        };
        let checked = check_response_type(params.response_type.as_deref())
            .and_then(|()| check_unsupported(params))
            .and_then(|()| client_may_use_codes(&client))
            .and_then(|()| {
                let scope = allowed_scope(&client, params.scope.as_deref())
                    .map_err(|e| (AuthorizeError::InvalidScope, e.to_string()))?;
                Ok((scope, check_challenge(&client, params)?))
            })
            .and_then(|(scope, challenge)| Ok((scope, challenge, check_nonce(params)?)))
            .and_then(|(scope, challenge, nonce)| {
                Ok((scope, challenge, nonce, check_prompt(params)?))
            });
        let (scope, code_challenge, nonce, prompt) =
            checked.map_err(|(error, why)| refuse(error, why))?;
        let hinted_subject = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            None => None,
            Some(hint) => match self.id_token_hint(&tenant, hint).await? {
                Some(hint) => Some(hint.sub),
                None => {
                    return Err(refuse(
                        AuthorizeError::InvalidRequest,
                        "id_token_hint is not an ID token of this tenant".into(),
                    ))
                }
            },
        };
        Ok(AuthorizationRequest {
            tenant,
            client,
            redirect_uri,
            redirect_uri_given: given,
            scope: scope.to_string(),
            state,
            code_challenge,
            nonce,
            prompt,
            hinted_subject,
        })
    }

    /// Answers `request` without the sign-in page when it can: with a code when the
    /// browser's live `session` meets its `prompt` and `max_age`, with
    /// `login_required` when only a password would and `prompt=none` forbids asking.
    pub async fn answer_in_session(
        &self,
        request: &AuthorizationRequest,
        session: Option<&SignInSession>,
    ) -> Result<Unattended> {
        // A session of another user than the hint names does not serve.
        let session = session.filter(|s| {
            request
                .hinted_subject
                .as_ref()
                .is_none_or(|subject| *subject == s.signed_in.user.subject)
        });
        let auth_time = session.map(|s| s.signed_in.auth_time);
        Ok(
            match (sign_in_needed(request.prompt, auth_time, now()), session) {
                (SignInNeeded::ReuseSession, Some(session)) => {
                    Unattended::Code(self.issue_code(request, &session.signed_in).await?)
                }
                (SignInNeeded::LoginRequired, _) => Unattended::Refused(request.refused(
                    AuthorizeError::LoginRequired,
                    "the user must sign in, and prompt=none asks not to",
                )),
                (SignInNeeded::ReuseSession | SignInNeeded::Password, _) => Unattended::SignInPage,
            },
        )
    }

    /// The client the request names, if this tenant's endpoint may serve it (the super
    /// tenant's serves every tenant's clients), with the client's tenant.
    async fn requesting_client(
        &self,
        path_tenant: &Tenant,
        params: &AuthorizeParams,
    ) -> Result<(Arc<Tenant>, Arc<ClientRecord>), Refused> {
        let client_id = params
            .client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Refused::Page("The request names no client.".into()))?;
        let scope_rule = if path_tenant.is_super {
            ClientScope::AnyTenant
        } else {
            ClientScope::ThisTenant
        };
        let unknown = || Refused::Page("The application is not known here.".into());
        if client_id == CONSOLE_CLIENT_ID {
            // The console of the path's tenant, and of no other.
            let tenant = self
                .directory
                .tenant_by_id(path_tenant.id)
                .ok_or_else(unknown)?;
            let client = Arc::new(console_client(&tenant));
            return Ok((tenant, client));
        }
        let client = self.directory.client(&*self.store, client_id).await?;
        let client = client
            .filter(|c| scope_rule == ClientScope::AnyTenant || c.tenant_id == path_tenant.id)
            .ok_or_else(unknown)?;
        let tenant = self
            .directory
            .tenant_by_id(client.tenant_id)
            .ok_or_else(unknown)?;
        Ok((tenant, client))
    }

    /// Signs a user in to the tenant of the client that asked: `alice` or
    /// `alice@{that tenant}`. `None` for a blank name, an unknown user, a wrong
    /// password, or a locked or disabled account alike.
    pub async fn sign_in(
        &self,
        request: &AuthorizationRequest,
        username: &str,
        password: &SecretString,
        origin: &Origin,
    ) -> Result<Option<Arc<UserRecord>>> {
        if username.is_empty() {
            return Ok(None);
        }
        let tenant = &request.tenant;
        let sign_in = sign_in_name_in(username, &tenant.domain);
        self.authenticate_user(tenant, &sign_in, password, origin)
            .await
    }

    /// Issues a code for the user `signed_in` and answers the redirect `Location` that
    /// carries it.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
    ) -> Result<String> {
        let now = now();
        let code = random_string(32);
        let record = NewToken {
            tenant_id: request.tenant.id,
            kind: TokenKind::AuthorizationCode,
            digest: digest(&code),
            jti: random_string(16),
            grant_id: grant_id(),
            grant_started_at: now,
            refresh_digest: None,
            client_id: request.client.client_id.clone(),
            username: Some(signed_in.user.username.clone()),
            scope: request.scope.clone(),
            issued_at: now,
            not_before: now,
            expires_at: now + request.tenant.settings.lifetimes.authorization_code,
            redirect_uri: request
                .redirect_uri_given
                .then(|| request.redirect_uri.clone()),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            auth_time: Some(signed_in.auth_time),
            sid: Some(signed_in.sid.clone()),
        };
        self.store.insert_tokens(&[record]).await?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &request.tenant.issuer));
        Ok(with_query(&request.redirect_uri, &pairs))
    }
}

/// The redirect URI the answer goes to, and whether the request named it: a
/// registered one, or the only one when the request names none (RFC 6749 §3.1.2.3).
fn registered_redirect(
    client: &ClientRecord,
    params: &AuthorizeParams,
) -> Result<(String, bool), Refused> {
    match params.redirect_uri.as_deref().filter(|u| !u.is_empty()) {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| client::redirect_uri_matches(r, uri)) =>
        {
            Ok((uri.to_owned(), true))
        }
        Some(_) => Err(Refused::Page(
            "The redirect URI is not registered for this application.".into(),
        )),
        None if client.redirect_uris.len() == 1 => Ok((client.redirect_uris[0].clone(), false)),
        None => Err(Refused::Page(
            "The request must name one of the application's redirect URIs.".into(),
        )),
    }
}

/// What goes back to the client when a check fails: the code and its description.
type Failed = (AuthorizeError, String);

fn check_response_type(response_type: Option<&str>) -> Result<(), Failed> {
    match response_type {
        Some("code") => Ok(()),
        None | Some("") => Err((
            AuthorizeError::InvalidRequest,
            "response_type is required".into(),
        )),
        Some(_) => Err((
            AuthorizeError::UnsupportedResponseType,
            "only response_type=code is supported".into(),
        )),
    }
}

/// Request objects and registration in the request, which this provider does not
/// support: each has its own error (Core §3.1.2.6), so the client learns why.
fn check_unsupported(params: &AuthorizeParams) -> Result<(), Failed> {
    let sent = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
    if sent(&params.request) {
        return Err((
            AuthorizeError::RequestNotSupported,
            "request objects are not supported: send the parameters in the query".into(),
        ));
    }
    if sent(&params.request_uri) {
        return Err((
            AuthorizeError::RequestUriNotSupported,
            "request_uri is not supported: send the parameters in the query".into(),
        ));
    }
    if sent(&params.registration) {
        return Err((
            AuthorizeError::RegistrationNotSupported,
            "registration in the request is not supported: register the client first".into(),
        ));
    }
    Ok(())
}

fn client_may_use_codes(client: &ClientRecord) -> Result<(), Failed> {
    if client.allows(GrantType::AuthorizationCode) {
        return Ok(());
    }
    Err((
        AuthorizeError::UnauthorizedClient,
        "the client may not use the authorization code grant".into(),
    ))
}

/// OpenID Connect's `prompt` and `max_age`, checked for sense. `consent` needs
/// nothing more (there is no consent page to skip), and `select_account` asks for the
/// password as `login` does, since a session holds one account.
fn check_prompt(params: &AuthorizeParams) -> Result<Prompt, Failed> {
    let invalid = |why: &str| Err((AuthorizeError::InvalidRequest, why.to_owned()));
    let max_age = match params.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(max_age) => match max_age.parse::<u32>() {
            Ok(seconds) => Some(i64::from(seconds)),
            Err(_) => return invalid("max_age must be a number of seconds"),
        },
    };
    let values: Vec<&str> = params
        .prompt
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(unknown) = values
        .iter()
        .find(|v| !matches!(**v, "none" | "login" | "consent" | "select_account"))
    {
        return invalid(&format!(
            "prompt {unknown:?} is not none, login, consent or select_account"
        ));
    }
    let none = values.contains(&"none");
    if none && values.len() > 1 {
        return invalid("prompt=none cannot be combined with another value");
    }
    Ok(Prompt {
        none,
        login: values.contains(&"login") || values.contains(&"select_account"),
        max_age,
    })
}

/// OpenID Connect's `nonce`: any text up to a bound, which the ID token repeats.
fn check_nonce(params: &AuthorizeParams) -> Result<Option<String>, Failed> {
    match params.nonce.as_deref().filter(|n| !n.is_empty()) {
        Some(nonce) if nonce.chars().count() > MAX_NONCE_CHARS => Err((
            AuthorizeError::InvalidRequest,
            format!("nonce must be at most {MAX_NONCE_CHARS} characters"),
        )),
        nonce => Ok(nonce.map(str::to_owned)),
    }
}

/// The S256 code challenge, required when the client requires PKCE (RFC 7636 §4.3).
fn check_challenge(
    client: &ClientRecord,
    params: &AuthorizeParams,
) -> Result<Option<String>, Failed> {
    let invalid = |why: &str| Err((AuthorizeError::InvalidRequest, why.to_owned()));
    let challenge = params.code_challenge.clone().filter(|c| !c.is_empty());
    match (&challenge, params.code_challenge_method.as_deref()) {
        (None, Some(_)) => invalid("code_challenge_method without code_challenge"),
        (None, None) if client.require_pkce => {
            invalid("this client must use PKCE (code_challenge with S256)")
        }
        (None, None) => Ok(None),
        // RFC 7636 §4.3: no method means "plain", which is not offered.
        (Some(_), method) if method != Some("S256") => {
            invalid("code_challenge_method must be S256")
        }
        (Some(c), _) if !is_pkce_value(c) => {
            invalid("code_challenge must be 43 to 128 unreserved characters")
        }
        (Some(_), _) => Ok(challenge),
    }
}

impl AuthorizationRequest {
    /// The answer when the user declines on the sign-in page.
    pub fn denied(&self) -> Refused {
        self.refused(AuthorizeError::AccessDenied, "the user declined")
    }

    /// `error` with `description`, to the client's redirect URI.
    fn refused(&self, error: AuthorizeError, description: &str) -> Refused {
        Refused::Redirect(ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            issuer: self.tenant.issuer.clone(),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        assert_eq!(
            with_query("https://a.example/cb", &[("code", "x y"), ("state", "s&t")]),
            "https://a.example/cb?code=x+y&state=s%26t"
        );
        assert_eq!(
            with_query("https://a.example/cb?keep=1", &[("code", "c")]),
            "https://a.example/cb?keep=1&code=c"
        );
    }
}
