//! The authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636): validating an
//! authorization request, issuing a code after sign-in, and exchanging it.

use super::authenticate::ClientScope;
use super::grant::{Issuance, TokenResponse};
use super::token_text::{digest, grant_id, random_string};
use super::{now, Error, Gateway, Result};
use crate::domain::client::{self, GrantType};
use crate::domain::tenant::Tenant;
use crate::domain::token::TokenKind;
use crate::store::{ClientRecord, NewToken, UserRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

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

#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    /// The client's tenant's issuer, sent as `iss` (RFC 9207).
    pub issuer: String,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        Refused::Internal(e)
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters (verifier and S256 challenge alike).
fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(verifier))`, compared in constant time.
fn verifier_meets(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// Appends `pairs` to `uri`'s query, keeping what it already has (RFC 6749 §3.1.2).
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
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
            ("error", self.error),
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
        let client = self.directory.client(&*self.store, client_id).await?;
        let client = client
            .filter(|c| scope_rule == ClientScope::AnyTenant || c.tenant_id == path_tenant.id)
            .ok_or_else(|| Refused::Page("The application is not known here.".into()))?;
        let tenant = self
            .directory
            .tenant_by_id(client.tenant_id)
            .ok_or_else(|| Refused::Page("The application is not known here.".into()))?;
        let (redirect_uri, given) = match params.redirect_uri.as_deref().filter(|u| !u.is_empty()) {
            Some(uri)
                if client
                    .redirect_uris
                    .iter()
                    .any(|r| client::redirect_uri_matches(r, uri)) =>
            {
                (uri.to_owned(), true)
            }
            Some(_) => {
                return Err(Refused::Page(
                    "The redirect URI is not registered for this application.".into(),
                ))
            }
            None if client.redirect_uris.len() == 1 => (client.redirect_uris[0].clone(), false),
            None => {
                return Err(Refused::Page(
                    "The request must name one of the application's redirect URIs.".into(),
                ))
            }
        };
        let state = params.state.clone().filter(|s| !s.is_empty());
        let refuse = |error, description: &str| {
            Refused::Redirect(ErrorRedirect {
                redirect_uri: redirect_uri.clone(),
                issuer: tenant.issuer.clone(),
                state: state.clone(),
                error,
                description: description.to_owned(),
            })
        };
        match params.response_type.as_deref() {
            Some("code") => {}
            None | Some("") => return Err(refuse("invalid_request", "response_type is required")),
            Some(_) => {
                return Err(refuse(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ))
            }
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(refuse(
                "unauthorized_client",
                "the client may not use the authorization code grant",
            ));
        }
        let scope = super::grant::allowed_scope(&client, params.scope.as_deref())
            .map_err(|e| refuse("invalid_scope", &e.to_string()))?;
        let challenge = params.code_challenge.clone().filter(|c| !c.is_empty());
        match (&challenge, params.code_challenge_method.as_deref()) {
            (None, Some(_)) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge_method without code_challenge",
                ))
            }
            (None, None) if client.require_pkce => {
                return Err(refuse(
                    "invalid_request",
                    "this client must use PKCE (code_challenge with S256)",
                ))
            }
            (None, None) => {}
            (Some(c), method) => {
                // RFC 7636 §4.3: no method means "plain", which is not offered.
                if method != Some("S256") {
                    return Err(refuse(
                        "invalid_request",
                        "code_challenge_method must be S256",
                    ));
                }
                if !is_pkce_value(c) {
                    return Err(refuse(
                        "invalid_request",
                        "code_challenge must be 43 to 128 unreserved characters",
                    ));
                }
            }
        }
        Ok(AuthorizationRequest {
            tenant,
            client,
            redirect_uri,
            redirect_uri_given: given,
            scope,
            state,
            code_challenge: challenge,
        })
    }

    /// Issues a code for `user` and answers the redirect `Location` that carries it.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        user: &UserRecord,
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
            username: Some(user.username.clone()),
            scope: request.scope.clone(),
            issued_at: now,
            not_before: now,
            expires_at: now + request.tenant.lifetimes.authorization_code,
            redirect_uri: request
                .redirect_uri_given
                .then(|| request.redirect_uri.clone()),
            code_challenge: request.code_challenge.clone(),
        };
        self.store.insert_tokens(&[record]).await?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &request.tenant.issuer));
        Ok(with_query(&request.redirect_uri, &pairs))
    }

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6). A second
    /// exchange of a code fails and revokes every token issued from it (SPEC §7).
    pub(super) async fn exchange_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        code: &SecretString,
        redirect_uri: Option<&str>,
        verifier: Option<&SecretString>,
        now: i64,
    ) -> Result<TokenResponse> {
        let invalid =
            || Error::InvalidGrant("the authorization code is invalid, expired or already used");
        let record = self
            .single_use(
                tenant,
                client,
                TokenKind::AuthorizationCode,
                code,
                now,
                invalid,
            )
            .await?;
        let t = &record.token;
        let redirect_ok = match (&t.redirect_uri, redirect_uri) {
            (Some(stored), Some(given)) => stored == given,
            (Some(_), None) => false,
            (None, None) => true,
            (None, Some(given)) => {
                client.redirect_uris.len() == 1 && client.redirect_uris[0] == given
            }
        };
        if !redirect_ok {
            let actor = format!("client:{}", client.client_id);
            self.spend_leaked_code(&record, &actor, now).await?;
            return Err(Error::InvalidGrant(
                "redirect_uri differs from the authorization request",
            ));
        }
        match (&t.code_challenge, verifier) {
            (Some(challenge), Some(verifier)) => {
                let v = verifier.expose_secret();
                if !is_pkce_value(v) || !verifier_meets(v, challenge) {
                    return Err(Error::InvalidGrant(
                        "code_verifier does not match the code_challenge",
                    ));
                }
            }
            (Some(_), None) => return Err(Error::InvalidGrant("code_verifier is required")),
            (None, Some(_)) => {
                return Err(Error::InvalidGrant(
                    "the authorization request had no code_challenge",
                ))
            }
            (None, None) => {}
        }
        let issuance = Issuance {
            tenant,
            client,
            username: Some(t.username.clone().ok_or_else(invalid)?),
            scope: t.scope.clone(),
            with_refresh: true,
            grant_id: t.grant_id.clone(),
            grant_started_at: t.grant_started_at,
        };
        self.spend(&record, issuance, now, invalid).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_meets(verifier, challenge));
        assert!(!verifier_meets(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(is_pkce_value(verifier));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
    }

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
