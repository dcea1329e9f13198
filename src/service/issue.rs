//! Issuing tokens: what one issuance hands out, and the scope rules every grant
//! follows. The grants (`grant.rs`, `authorize.rs`, `redeem.rs`) call this; it calls
//! none of them.

use super::keys::es256::SigningKey;
use super::keys::TenantKeys;
use super::token_text::{digest, grant_id, random_string};
use super::{Error, Gateway, Result};
use crate::domain::client::AccessTokenFormat;
use crate::domain::scope::Scope;
use crate::domain::tenant::Tenant;
use crate::domain::token::TokenKind;
use crate::store::{ClientRecord, NewToken};
use serde::Serialize;
use std::sync::Arc;

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
    /// For a grant with `openid` in its scope (OpenID Connect Core §3.1.3.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl Gateway {
    /// Stores the tokens of a new grant and hands out their plaintext.
    pub(super) async fn issue(&self, issuance: Issuance<'_>, now: i64) -> Result<TokenResponse> {
        let signer = self.access_token_signer(&issuance).await?;
        let (tokens, response) = issuance.mint(now, signer.as_deref().map(|k| &k.signer))?;
        self.store.insert_tokens(&tokens).await?;
        Ok(response)
    }

    /// The tenant's keys when the client's access tokens are JWTs, which they sign.
    pub(super) async fn access_token_signer(
        &self,
        issuance: &Issuance<'_>,
    ) -> Result<Option<Arc<TenantKeys>>> {
        match issuance.client.access_token_format {
            AccessTokenFormat::Opaque => Ok(None),
            AccessTokenFormat::Jwt => Ok(Some(self.tenant_keys(issuance.tenant).await?)),
        }
    }
}

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    exp: i64,
    /// The resource the token is for: without resource indicators, the tenant's own
    /// issuer, whose introspection and userinfo endpoints take it.
    aud: &'a str,
    /// The user's subject, or the client's id for a token of the client's own.
    sub: &'a str,
    client_id: &'a str,
    iat: i64,
    jti: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
}

/// The `typ` of a JWT access token's header (RFC 9068 §2.1).
const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// What one issuance hands out: to whom, with what scope, in which grant.
pub(super) struct Issuance<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) client: &'a ClientRecord,
    pub(super) username: Option<String>,
    pub(super) scope: Scope,
    pub(super) with_refresh: bool,
    /// Shared by every token of one authorization, across its refreshes.
    pub(super) grant_id: String,
    /// When the grant's first token was issued.
    pub(super) grant_started_at: i64,
    /// When the grant's user entered the password, for a grant that began with a
    /// sign-in; every token of the grant carries it.
    pub(super) auth_time: Option<i64>,
    /// The sign-in session the grant began in; every token of the grant carries it.
    pub(super) sid: Option<String>,
    /// The user's subject, the `sub` of a JWT access token; `None` for a token of the
    /// client's own.
    pub(super) subject: Option<String>,
}

impl<'a> Issuance<'a> {
    /// The first issuance of a new grant.
    pub(super) fn new_grant(
        tenant: &'a Tenant,
        client: &'a ClientRecord,
        username: Option<String>,
        scope: Scope,
        with_refresh: bool,
        now: i64,
    ) -> Self {
        Issuance {
            tenant,
            client,
            username,
            scope,
            with_refresh,
            grant_id: grant_id(),
            grant_started_at: now,
            auth_time: None,
            sid: None,
            subject: None,
        }
    }

    /// Builds the tokens to store and the answer that hands out their plaintext. A
    /// client of JWT access tokens gets one signed by `signer` (RFC 9068); it is
    /// stored by its digest like an opaque one, so introspection and revocation treat
    /// both alike.
    pub(super) fn mint(
        self,
        now: i64,
        signer: Option<&SigningKey>,
    ) -> Result<(Vec<NewToken>, TokenResponse)> {
        let lifetimes = self.tenant.settings.lifetimes;
        let scope_text = self.scope.to_string();
        // No token of a grant outlives the grant (RFC 9700 §4.14.2).
        let grant_ends = self.grant_started_at + lifetimes.grant_max_lifetime;
        let expiry = |ttl: i64| (now + ttl).min(grant_ends);
        let access_jti = random_string(16);
        let access_token = match (self.client.access_token_format, signer) {
            (AccessTokenFormat::Opaque, _) => random_string(32),
            (AccessTokenFormat::Jwt, Some(signer)) => {
                let client_id = self.client.client_id.as_str();
                let claims = AccessTokenClaims {
                    iss: &self.tenant.issuer,
                    exp: expiry(lifetimes.access_token),
                    aud: &self.tenant.issuer,
                    sub: self.subject.as_deref().unwrap_or(client_id),
                    client_id,
                    iat: now,
                    jti: &access_jti,
                    scope: &scope_text,
                };
                signer
                    .sign(ACCESS_TOKEN_TYP, &claims)
                    .map_err(|e| Error::Internal(format!("signing an access token: {e}")))?
            }
            (AccessTokenFormat::Jwt, None) => {
                return Err(Error::Internal(
                    "a JWT access token was minted without the tenant's key".into(),
                ))
            }
        };
        let refresh_token = self.with_refresh.then(|| random_string(32));
        let base = |kind, plaintext: &str, ttl: i64, jti: String| NewToken {
            tenant_id: self.tenant.id,
            kind,
            digest: digest(plaintext),
            jti,
            grant_id: self.grant_id.clone(),
            grant_started_at: self.grant_started_at,
            refresh_digest: None,
            client_id: self.client.client_id.clone(),
            username: self.username.clone(),
            scope: scope_text.clone(),
            issued_at: now,
            not_before: now,
            expires_at: expiry(ttl),
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            auth_time: self.auth_time,
            sid: self.sid.clone(),
        };
        let mut tokens = Vec::with_capacity(2);
        let mut access = base(
            TokenKind::Access,
            &access_token,
            lifetimes.access_token,
            access_jti,
        );
        if let Some(refresh) = &refresh_token {
            let refresh = base(
                TokenKind::Refresh,
                refresh,
                lifetimes.refresh_token,
                random_string(16),
            );
            access.refresh_digest = Some(refresh.digest);
            tokens.push(refresh);
        }
        tokens.push(access);
        let response = TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: expiry(lifetimes.access_token) - now,
            scope: scope_text,
            refresh_token,
            id_token: None,
        };
        Ok((tokens, response))
    }
}

/// Parses a requested scope and checks it against the client's allowed scopes.
pub(super) fn allowed_scope(client: &ClientRecord, requested: Option<&str>) -> Result<Scope> {
    let scope = Scope::parse(requested).and_then(|s| s.allowed_by(&client.scopes));
    scope.map_err(|e| Error::InvalidScope(e.to_string()))
}

/// RFC 6749 §6: a refresh may narrow the original scope, never widen it.
pub(super) fn narrowed_scope(original: &str, requested: Option<&str>) -> Result<Scope> {
    Scope::narrowed(original, requested).map_err(|e| Error::InvalidScope(e.to_string()))
}
