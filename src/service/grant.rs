//! The token endpoint (RFC 6749 §3.2): which grant, for whom, with what scope, and the
//! tokens one issuance hands out.

use super::authenticate::AuthenticatedClient;
use super::token_text::{digest, grant_id, random_string};
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::client::{is_scope_token, GrantType};
use crate::domain::tenant::Tenant;
use crate::domain::token::TokenKind;
use crate::store::{ClientRecord, NewToken};
use secrecy::SecretString;
use serde::Serialize;

/// A grant at the token endpoint.
#[derive(Debug)]
pub enum Grant {
    AuthorizationCode {
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<SecretString>,
    },
    ClientCredentials {
        scope: Option<String>,
    },
    Password {
        username: String,
        password: SecretString,
        scope: Option<String>,
    },
    RefreshToken {
        refresh_token: SecretString,
        scope: Option<String>,
    },
}

impl Grant {
    fn grant_type(&self) -> GrantType {
        match self {
            Grant::ClientCredentials { .. } => GrantType::ClientCredentials,
            Grant::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Grant::Password { .. } => GrantType::Password,
            Grant::RefreshToken { .. } => GrantType::RefreshToken,
        }
    }
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
#[allow(missing_debug_implementations, reason = "holds the tokens issued")]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl Gateway {
    // ---- the token endpoint -----------------------------------------------------------

    /// Runs a grant for an authenticated client. Every token in the answer is committed
    /// before this returns.
    pub async fn grant(
        &self,
        client: &AuthenticatedClient,
        grant: Grant,
        origin: &Origin,
    ) -> Result<TokenResponse> {
        let client: &ClientRecord = &client.0;
        if !client.allows(grant.grant_type()) {
            return Err(Error::UnauthorizedClient(
                "the client may not use this grant type",
            ));
        }
        let tenant = self
            .directory
            .tenant_by_id(client.tenant_id)
            .ok_or(Error::InvalidClient)?;
        let now = now();
        let grant_type = grant.grant_type();
        let response = match grant {
            Grant::ClientCredentials { scope } => {
                let scope = allowed_scope(client, scope.as_deref())?;
                // RFC 6749 §4.4.3: no refresh token for client credentials.
                let issuance = Issuance {
                    tenant: &tenant,
                    client,
                    username: None,
                    scope,
                    with_refresh: false,
                    grant_id: grant_id(),
                    grant_started_at: now,
                };
                self.issue(issuance, now).await
            }
            Grant::Password {
                username,
                password,
                scope,
            } => {
                let scope = allowed_scope(client, scope.as_deref())?;
                let sign_in = qualify_for(&username, &tenant);
                let user = self
                    .authenticate_user(&tenant, &sign_in, &password, origin)
                    .await?
                    .ok_or(Error::InvalidGrant("the username or password is wrong"))?;
                let issuance = Issuance {
                    tenant: &tenant,
                    client,
                    username: Some(user.username.clone()),
                    scope,
                    with_refresh: true,
                    grant_id: grant_id(),
                    grant_started_at: now,
                };
                self.issue(issuance, now).await
            }
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                self.exchange_code(
                    &tenant,
                    client,
                    &code,
                    redirect_uri.as_deref(),
                    code_verifier.as_ref(),
                    now,
                )
                .await
            }
            Grant::RefreshToken {
                refresh_token,
                scope,
            } => {
                self.refresh(&tenant, client, &refresh_token, scope.as_deref(), now)
                    .await
            }
        }?;
        self.metrics
            .issued(tenant.domain.as_str(), grant_type.as_str());
        Ok(response)
    }

    async fn issue(&self, issuance: Issuance<'_>, now: i64) -> Result<TokenResponse> {
        let (tokens, response) = issuance.mint(now);
        self.store.insert_tokens(&tokens).await?;
        Ok(response)
    }
}

/// What one issuance hands out: to whom, with what scope, in which grant.
pub(super) struct Issuance<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) client: &'a ClientRecord,
    pub(super) username: Option<String>,
    pub(super) scope: String,
    pub(super) with_refresh: bool,
    /// Shared by every token of one authorization, across its refreshes.
    pub(super) grant_id: String,
    /// When the grant's first token was issued.
    pub(super) grant_started_at: i64,
}

impl Issuance<'_> {
    /// Builds the tokens to store and the answer that hands out their plaintext.
    pub(super) fn mint(self, now: i64) -> (Vec<NewToken>, TokenResponse) {
        let lifetimes = self.tenant.lifetimes;
        let access_token = random_string(32);
        let refresh_token = self.with_refresh.then(|| random_string(32));
        // No token of a grant outlives the grant (RFC 9700 §4.14.2).
        let grant_ends = self.grant_started_at + lifetimes.grant_max_lifetime;
        let expiry = |ttl: i64| (now + ttl).min(grant_ends);
        let base = |kind, plaintext: &str, ttl: i64| NewToken {
            tenant_id: self.tenant.id,
            kind,
            digest: digest(plaintext),
            jti: random_string(16),
            grant_id: self.grant_id.clone(),
            grant_started_at: self.grant_started_at,
            refresh_digest: None,
            client_id: self.client.client_id.clone(),
            username: self.username.clone(),
            scope: self.scope.clone(),
            issued_at: now,
            not_before: now,
            expires_at: expiry(ttl),
            redirect_uri: None,
            code_challenge: None,
        };
        let mut tokens = Vec::with_capacity(2);
        let mut access = base(TokenKind::Access, &access_token, lifetimes.access_token);
        if let Some(refresh) = &refresh_token {
            let refresh = base(TokenKind::Refresh, refresh, lifetimes.refresh_token);
            access.refresh_digest = Some(refresh.digest);
            tokens.push(refresh);
        }
        tokens.push(access);
        let response = TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: expiry(lifetimes.access_token) - now,
            scope: self.scope,
            refresh_token,
        };
        (tokens, response)
    }
}

/// The password grant names a user of the client's tenant: `alice`, or `alice@foo.com`
/// when the client is in foo.com.
fn qualify_for(username: &str, tenant: &Tenant) -> String {
    let suffix = format!("@{}", tenant.domain);
    if username.ends_with(&suffix) {
        username.to_owned()
    } else {
        format!("{username}{suffix}")
    }
}

/// Parses a requested scope and checks it against the client's allowed scopes.
pub(super) fn allowed_scope(client: &ClientRecord, requested: Option<&str>) -> Result<String> {
    let scopes = parse_scope(requested)?;
    if let Some(outside) = scopes
        .iter()
        .find(|s| !client.scopes.is_empty() && !client.scopes.iter().any(|a| a == *s))
    {
        return Err(Error::InvalidScope(format!(
            "the client may not request {outside:?}"
        )));
    }
    Ok(scopes.join(" "))
}

/// RFC 6749 §6: a refresh may narrow the original scope, never widen it.
pub(super) fn narrowed_scope(original: &str, requested: Option<&str>) -> Result<String> {
    if requested.is_none() {
        return Ok(original.to_owned());
    }
    let scopes = parse_scope(requested)?;
    let granted: Vec<&str> = original.split(' ').collect();
    if let Some(outside) = scopes.iter().find(|s| !granted.contains(s)) {
        return Err(Error::InvalidScope(format!(
            "{outside:?} was not granted originally"
        )));
    }
    Ok(scopes.join(" "))
}

fn parse_scope(requested: Option<&str>) -> Result<Vec<&str>> {
    let mut scopes: Vec<&str> = Vec::new();
    for s in requested
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !is_scope_token(s) {
            return Err(Error::InvalidScope(format!("{s:?} is not a valid scope")));
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(scopes: &[&str]) -> ClientRecord {
        ClientRecord {
            id: 1,
            tenant_id: 1,
            client_id: "c".into(),
            secret_hash: None,
            grant_types: vec![],
            redirect_uris: vec![],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            require_pkce: true,
            failed_attempts: 0,
            locked_until: None,
        }
    }

    #[test]
    fn scopes_are_checked_against_the_client() {
        assert_eq!(
            allowed_scope(&client(&[]), Some("test1 test2")).unwrap(),
            "test1 test2"
        );
        assert_eq!(
            allowed_scope(&client(&["a", "b"]), Some("b  a b")).unwrap(),
            "b a"
        );
        assert!(matches!(
            allowed_scope(&client(&["a"]), Some("a c")),
            Err(Error::InvalidScope(_))
        ));
        assert!(matches!(
            allowed_scope(&client(&[]), Some("a\"")),
            Err(Error::InvalidScope(_))
        ));
        assert_eq!(allowed_scope(&client(&["a"]), None).unwrap(), "");
    }

    #[test]
    fn a_refresh_may_narrow_but_not_widen() {
        assert_eq!(narrowed_scope("a b", None).unwrap(), "a b");
        assert_eq!(narrowed_scope("a b", Some("b")).unwrap(), "b");
        assert!(narrowed_scope("a b", Some("c")).is_err());
    }
}
