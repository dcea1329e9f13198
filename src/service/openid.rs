//! OpenID Connect for every tenant: the ID token a grant with `openid` in its scope
//! hands out, and the userinfo answer for an access token of such a grant.

use super::issue::TokenResponse;
use super::token_text::presented_digest;
use super::{now, Error, Gateway, Result};
use crate::domain::openid::{at_hash, has_scope, IdTokenClaims, Identity, Person, OPENID};
use crate::domain::tenant::Tenant;
use crate::domain::token::TokenKind;
use crate::store::UserRecord;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The `typ` of an ID token's header.
const ID_TOKEN_TYP: &str = "JWT";

/// What an ID token says beyond who the user is: from the grant's first token.
pub(super) struct SignIn<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    pub auth_time: Option<i64>,
    /// The sign-in session the grant began in.
    pub sid: Option<&'a str>,
    pub nonce: Option<&'a str>,
}

/// The claims that matter of an ID token this tenant issued, given back as an
/// `id_token_hint` (at the authorization and end-session endpoints).
#[derive(Debug, Deserialize)]
pub(super) struct IdTokenHint {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: Option<String>,
}

/// Why the userinfo endpoint refuses (RFC 6750 §3.1).
#[derive(Debug)]
pub enum UserinfoRefusal {
    /// No access token of this tenant that is active now, or its user cannot hold one.
    InvalidToken,
    /// The token was not issued with `openid`.
    InsufficientScope,
    Failed(Error),
}

impl From<Error> for UserinfoRefusal {
    fn from(e: Error) -> Self {
        UserinfoRefusal::Failed(e)
    }
}

impl Gateway {
    /// Adds the ID token to `response` when its scope holds `openid`: signed with the
    /// tenant's key, for the user's subject, with `at_hash` of the access token in it.
    pub(super) async fn with_id_token(
        &self,
        tenant: &Tenant,
        mut response: TokenResponse,
        sign_in: SignIn<'_>,
        now: i64,
    ) -> Result<TokenResponse> {
        if !has_scope(&response.scope, OPENID) {
            return Ok(response);
        }
        let user = self
            .directory
            .user(&*self.store, tenant.id, sign_in.username)
            .await?
            .ok_or(Error::InvalidGrant("the grant's user no longer exists"))?;
        let claims = IdTokenClaims {
            iss: tenant.issuer.clone(),
            aud: sign_in.client_id.to_owned(),
            azp: sign_in.client_id.to_owned(),
            exp: now + response.expires_in,
            iat: now,
            auth_time: sign_in.auth_time,
            sid: sign_in.sid.map(str::to_owned),
            nonce: sign_in.nonce.map(str::to_owned),
            at_hash: at_hash(&response.access_token),
            identity: Identity::released(person(&user), &response.scope),
        };
        let keys = self.tenant_keys(tenant).await?;
        let signed = keys
            .signer
            .sign(ID_TOKEN_TYP, &claims)
            .map_err(|e| Error::Internal(format!("signing an ID token: {e}")))?;
        response.id_token = Some(signed);
        Ok(response)
    }

    /// The claims of `hint` when this tenant signed it, with a key its JWKS still
    /// publishes, for its own issuer; `None` otherwise. Its expiry is not checked: a
    /// hint only names a user and a session, and grants nothing (RP-Initiated Logout
    /// §2 asks that expired ones be accepted).
    pub(super) async fn id_token_hint(
        &self,
        tenant: &Tenant,
        hint: &str,
    ) -> Result<Option<IdTokenHint>> {
        let keys = self.tenant_keys(tenant).await?;
        let claims = keys
            .verified_payload(hint)
            .and_then(|payload| serde_json::from_slice::<IdTokenHint>(&payload).ok());
        Ok(claims.filter(|claims| claims.iss == tenant.issuer))
    }

    /// The userinfo answer (Core §5.3) for a Bearer access token of this tenant that
    /// was issued with `openid`, to a user who may still hold it.
    pub async fn userinfo(
        &self,
        tenant: &Tenant,
        token: &SecretString,
    ) -> std::result::Result<Identity, UserinfoRefusal> {
        let digest =
            presented_digest(token.expose_secret()).ok_or(UserinfoRefusal::InvalidToken)?;
        let record = self
            .live_token(tenant, &digest, now())
            .await?
            .filter(|r| r.kind == TokenKind::Access)
            .ok_or(UserinfoRefusal::InvalidToken)?;
        if !has_scope(record.scope(), OPENID) {
            return Err(UserinfoRefusal::InsufficientScope);
        }
        // A client's own token (client credentials) has no user to describe.
        let username = record
            .username()
            .ok_or(UserinfoRefusal::InsufficientScope)?;
        let user = self
            .directory
            .user(&*self.store, tenant.id, username)
            .await?
            .filter(|u| u.enabled)
            .ok_or(UserinfoRefusal::InvalidToken)?;
        Ok(Identity::released(person(&user), record.scope()))
    }
}

fn person(user: &UserRecord) -> Person<'_> {
    Person {
        subject: &user.subject,
        username: &user.username,
        profile: &user.profile,
    }
}
