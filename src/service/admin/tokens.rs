//! Tokens seen by an admin: look one up with its grant's story, list a user's or a
//! client's live grants, revoke by token, user, client or grant (SPEC §7, §8).

use super::audit::AuditView;
use super::page::{page_limit, List, ListRequest, Page};
use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::principal::qualified_name;
use crate::domain::tenant::Tenant;
use crate::domain::token::{self, Event, Revocation, State};
use crate::service::revoke::revocation_steps;
use crate::service::token_text::presented_digest;
use crate::service::{now, Error, Gateway, Result};
use crate::store::{AuditEvent, GrantHolder, GrantPage, Selection, Step, TokenRecord};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: SecretString,
}

/// Exactly one of the four (SPEC §8 `POST /tokens/revoke`, and a grant by its id).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub token: Option<SecretString>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
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
    /// The story of the token's grant: never a token's text or digest.
    pub grant: GrantHistory,
}

/// A grant from its first token on: every token of it, and the admin actions that
/// touched it.
#[derive(Debug, Serialize)]
pub struct GrantHistory {
    pub started_at: i64,
    pub client_id: String,
    pub username: Option<String>,
    pub tokens: Vec<GrantToken>,
    pub admin_actions: Vec<AuditView>,
}

/// One token of a grant, as its history tells it.
#[derive(Debug, Serialize)]
pub struct GrantToken {
    pub kind: &'static str,
    pub jti: String,
    /// EXPIRED once the lifetime has passed, though not yet recorded.
    pub state: &'static str,
    pub state_reason: Option<&'static str>,
    pub issued_at: i64,
    /// When it stopped being active: its state change, or its expiry.
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    /// The address of the request that ended it (a revocation, a reuse, an admin).
    pub ended_from: Option<String>,
}

/// Whose live grants to list.
#[derive(Debug, Clone)]
pub enum GrantsOf {
    User(String),
    Client(String),
}

/// A grant that still holds an active token, in a user's or a client's list.
#[derive(Debug, Serialize)]
pub struct GrantView {
    pub grant_id: String,
    pub started_at: i64,
    pub client_id: String,
    pub username: Option<String>,
    pub last_issued_at: i64,
    pub active_tokens: i64,
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
        let grant = self.grant_history(tenant, &record, now).await?;
        Ok(token_view(&record, tenant, grant))
    }

    async fn grant_history(
        &self,
        tenant: &Tenant,
        record: &TokenRecord,
        now: i64,
    ) -> Result<GrantHistory> {
        let grant_id = &record.token.grant_id;
        let tokens = self.store.grant_tokens(tenant.id, grant_id).await?;
        let candidates = self.store.grant_actions(tenant.id, grant_id).await?;
        let admin_actions = candidates
            .into_iter()
            .filter(|e| touched(e, &tokens))
            .map(AuditView::from)
            .collect();
        Ok(GrantHistory {
            started_at: record.token.grant_started_at,
            client_id: record.token.client_id.clone(),
            username: owner_name(record, tenant),
            tokens: tokens.iter().map(|t| grant_token(t, now)).collect(),
            admin_actions,
        })
    }

    /// A page of a user's or a client's grants that still hold an active token, newest
    /// first.
    pub async fn list_grants(
        &self,
        admin: &Admin,
        request: &ListRequest,
        of: GrantsOf,
    ) -> Result<Page<GrantView>> {
        let holder = match of {
            GrantsOf::User(username) => GrantHolder::User(username),
            GrantsOf::Client(client_id) => GrantHolder::Client(client_id),
        };
        let tenant_id = admin.tenant.id;
        let before = self.open_timed_cursor(List::Grants, tenant_id, request.after.as_deref())?;
        if request.q.is_some() {
            return Err(invalid("q", "grants are listed by username or client_id"));
        }
        let page = GrantPage {
            holder,
            before,
            now: now(),
            limit: page_limit(request.limit)? + 1,
        };
        let grants = self.store.live_grants(tenant_id, &page).await?;
        let page = self.page(List::Grants, tenant_id, grants, page.limit, |g| {
            format!("{}:{}", g.started_at, g.grant_id)
        });
        let domain = &admin.tenant.domain;
        Ok(page.map(|g| GrantView {
            username: g.username.map(|u| qualified_name(&u, domain)),
            grant_id: g.grant_id,
            started_at: g.started_at,
            client_id: g.client_id,
            last_issued_at: g.last_issued_at,
            active_tokens: g.active_tokens,
        }))
    }

    /// Revokes one token (with its cascade), every token of a user, or every token of a
    /// client, and answers how many changed.
    pub async fn revoke_tokens(&self, admin: &Admin, request: RevokeRequest) -> Result<usize> {
        let tenant = &admin.tenant;
        let event = Event::Revoke(Revocation::ByAdmin);
        let both = |selection| Step::access_and_refresh(selection, event).to_vec();
        let named = (
            request.token,
            request.username,
            request.client_id,
            request.grant_id,
        );
        let (steps, target) = match named {
            (Some(token), None, None, None) => {
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
            (None, Some(username), None, None) => (
                both(Selection::Owner(username.clone())),
                format!("user:{username}"),
            ),
            (None, None, Some(client_id), None) => (
                both(Selection::Client(client_id.clone())),
                format!("client:{client_id}"),
            ),
            (None, None, None, Some(grant_id)) => (
                both(Selection::Grant(grant_id.clone())),
                format!("grant:{grant_id}"),
            ),
            _ => {
                return Err(invalid(
                    "token",
                    "give exactly one of token, username, client_id and grant_id",
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

/// Whether an audit entry is an admin action on one of `tokens`: it names one, or it
/// is the action that ended one (same actor, same time, the action of its reason).
fn touched(event: &AuditEvent, tokens: &[TokenRecord]) -> bool {
    let Some(action) = AuditAction::parse(&event.action).filter(|a| a.is_a_change()) else {
        return false;
    };
    tokens.iter().any(|t| {
        let names_it = event.target.strip_prefix("token:") == Some(t.token.jti.as_str());
        let ended_it = t.state_changed_at == Some(event.at)
            && t.state_changed_by.as_deref() == Some(event.actor.as_str())
            && t.state_reason.and_then(AuditAction::ending) == Some(action);
        names_it || ended_it
    })
}

/// The token's owner as `username@tenant`.
fn owner_name(record: &TokenRecord, tenant: &Tenant) -> Option<String> {
    let username = record.token.username.as_deref();
    username.map(|u| qualified_name(u, &tenant.domain))
}

fn grant_token(record: &TokenRecord, now: i64) -> GrantToken {
    let t = &record.token;
    let expired = token::lifetime_passed(record.state, t.expires_at, now);
    let (state, ended_at) = match (expired, record.state) {
        (true, _) => (State::Expired, Some(t.expires_at)),
        (false, State::Active) => (State::Active, None),
        (false, ended) => (ended, record.state_changed_at),
    };
    GrantToken {
        kind: t.kind.as_str(),
        jti: t.jti.clone(),
        state: state.as_str(),
        state_reason: record.state_reason.filter(|_| !expired).map(|r| r.as_str()),
        issued_at: t.issued_at,
        ended_at,
        ended_by: record.state_changed_by.clone().filter(|_| !expired),
        ended_from: record.state_changed_from.clone().filter(|_| !expired),
    }
}

fn token_view(record: &TokenRecord, tenant: &Tenant, grant: GrantHistory) -> TokenView {
    let t = &record.token;
    TokenView {
        kind: t.kind.as_str(),
        state: record.state.as_str(),
        state_reason: record.state_reason.map(|r| r.as_str()),
        state_changed_at: record.state_changed_at,
        state_changed_by: record.state_changed_by.clone(),
        client_id: t.client_id.clone(),
        username: owner_name(record, tenant),
        scope: t.scope.clone(),
        iat: t.issued_at,
        exp: t.expires_at,
        grant_id: t.grant_id.clone(),
        grant,
    }
}
