//! Tokens seen by an admin: look one up with its history, revoke by token, user or
//! client (SPEC §7, §8).

use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::principal::qualified_name;
use crate::domain::tenant::Tenant;
use crate::domain::token::{Event, Revocation};
use crate::service::revoke::revocation_steps;
use crate::service::token_text::presented_digest;
use crate::service::{now, Error, Gateway, Result};
use crate::store::{Selection, Step, TokenRecord};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: SecretString,
}

/// Exactly one of the three (SPEC §8 `POST /tokens/revoke`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub token: Option<SecretString>,
    pub username: Option<String>,
    pub client_id: Option<String>,
}

/// What an admin may know about a token that introspection never tells (SPEC §7).
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub kind: &'static str,
    pub state: &'static str,
    pub state_reason: Option<&'static str>,
    pub state_changed_at: Option<i64>,
    pub state_changed_by: Option<String>,
    pub client_id: String,
    pub username: Option<String>,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub grant_id: String,
}

impl Gateway {
    /// A token's kind, state and history, for admins only. Records EXPIRED first when
    /// the lifetime has passed, so the answer is what the next introspection will see.
    pub async fn lookup_token(&self, admin: &Admin, request: TokenRequest) -> Result<TokenView> {
        let tenant = &admin.tenant;
        let digest =
            presented_digest(request.token.expose_secret()).ok_or(Error::NotFound("token"))?;
        let now = now();
        // A token past its lifetime is recorded EXPIRED here, as introspection would.
        self.live_token(tenant, &digest, now).await?;
        let record = self
            .store
            .token(tenant.id, &digest)
            .await?
            .ok_or(Error::NotFound("token"))?;
        Ok(token_view(&record, tenant))
    }

    /// Revokes one token (with its cascade), every token of a user, or every token of a
    /// client, and answers how many changed.
    pub async fn revoke_tokens(&self, admin: &Admin, request: RevokeRequest) -> Result<usize> {
        let tenant = &admin.tenant;
        let event = Event::Revoke(Revocation::ByAdmin);
        let both = |selection| Step::access_and_refresh(selection, event).to_vec();
        let (steps, target) = match (request.token, request.username, request.client_id) {
            (Some(token), None, None) => {
                let Some(digest) = presented_digest(token.expose_secret()) else {
                    return Ok(0);
                };
                let Some(record) = self.store.token(tenant.id, &digest).await? else {
                    return Ok(0);
                };
                (
                    revocation_steps(&record, event),
                    format!("token:{}", record.token.jti),
                )
            }
            (None, Some(username), None) => (
                both(Selection::Owner(username.clone())),
                format!("user:{username}"),
            ),
            (None, None, Some(client_id)) => (
                both(Selection::Client(client_id.clone())),
                format!("client:{client_id}"),
            ),
            _ => {
                return Err(invalid(
                    "token",
                    "give exactly one of token, username and client_id",
                ))
            }
        };
        let write = self
            .store
            .revoke_by_admin(
                tenant.id,
                &steps,
                &admin.audit(AuditAction::TokensRevoke, &target),
            )
            .await?;
        let revoked = write.changes().tokens.len();
        let reason = Revocation::ByAdmin.reason().as_str();
        self.metrics
            .revoked(tenant.domain.as_str(), reason, revoked);
        self.settle(write).await?;
        Ok(revoked)
    }
}

fn token_view(record: &TokenRecord, tenant: &Tenant) -> TokenView {
    let t = &record.token;
    TokenView {
        kind: t.kind.as_str(),
        state: record.state.as_str(),
        state_reason: record.state_reason.map(|r| r.as_str()),
        state_changed_at: record.state_changed_at,
        state_changed_by: record.state_changed_by.clone(),
        client_id: t.client_id.clone(),
        username: t
            .username
            .as_deref()
            .map(|u| qualified_name(u, &tenant.domain)),
        scope: t.scope.clone(),
        iat: t.issued_at,
        exp: t.expires_at,
        grant_id: t.grant_id.clone(),
    }
}
