//! Introspection (RFC 7662): what a caller may know about a token, and the cached
//! lookup of live tokens that introspection and Bearer callers share.

use super::authenticate::Introspector;
use super::live_token::LiveToken;
use super::token_text::presented_digest;
use super::{now, Gateway, Result};
use crate::domain::principal::qualified_name;
use crate::domain::tenant::Tenant;
use crate::domain::token::{self, Event, TokenKind};
use crate::store::{Digest, Selection};
use serde::Serialize;
use std::sync::Arc;

/// RFC 7662 §2.2. An inactive answer carries nothing but `active: false`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Introspection {
    Active(Box<ActiveToken>),
    Inactive { active: bool },
}

#[derive(Serialize)]
pub struct ActiveToken {
    pub active: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub token_type: &'static str,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub sub: String,
    pub aud: String,
    pub iss: String,
    pub jti: String,
}

impl Introspection {
    fn inactive() -> Self {
        Introspection::Inactive { active: false }
    }
}

impl Gateway {
    /// RFC 7662: what `introspector` may know about `token`. Any token that is not
    /// active, or not the caller's to see, is `{"active": false}`.
    pub async fn introspect(
        &self,
        tenant: &Tenant,
        introspector: &Introspector,
        token: &str,
    ) -> Result<Introspection> {
        let now = now();
        let Some(digest) = presented_digest(token) else {
            return Ok(Introspection::inactive());
        };
        let Some(record) = self.live_token(tenant, &digest, now).await? else {
            return Ok(Introspection::inactive());
        };
        let t = &*record;
        if let Introspector::OwnTokens { client_id } = introspector {
            if client_id != t.client_id() {
                return Ok(Introspection::inactive());
            }
        }
        let username = t.username().map(|u| qualified_name(u, &tenant.domain));
        Ok(Introspection::Active(Box::new(ActiveToken {
            active: true,
            scope: t.scope().to_owned(),
            client_id: t.client_id().to_owned(),
            sub: username.clone().unwrap_or_else(|| t.client_id().to_owned()),
            username,
            token_type: match t.kind {
                TokenKind::Refresh => "refresh_token",
                TokenKind::Access | TokenKind::AuthorizationCode => "Bearer",
            },
            exp: t.expires_at,
            iat: t.issued_at,
            nbf: t.not_before,
            aud: t.client_id().to_owned(),
            iss: tenant.issuer.clone(),
            jti: t.jti().to_owned(),
        })))
    }

    /// The token with this digest in this tenant if it is active now, from the cache or
    /// with one indexed read. A token found past its lifetime is recorded EXPIRED.
    pub async fn live_token(
        &self,
        tenant: &Tenant,
        digest: &Digest,
        now: i64,
    ) -> Result<Option<Arc<LiveToken>>> {
        let record = match self.tokens.get(digest) {
            Some(record) => record,
            None => {
                let epoch = self.tokens.epoch();
                let Some(stored) = self.store.token(tenant.id, digest).await? else {
                    return Ok(None);
                };
                let record = Arc::new(LiveToken::of(&stored));
                if token::is_active(record.state, record.not_before, record.expires_at, now) {
                    self.tokens.insert(*digest, record.clone(), epoch);
                }
                record
            }
        };
        if record.tenant_id != tenant.id {
            return Ok(None);
        }
        if token::lifetime_passed(record.state, record.expires_at, now) {
            self.record_expiry(record.tenant_id, record.kind, record.id, now)
                .await;
            return Ok(None);
        }
        let active = token::is_active(record.state, record.not_before, record.expires_at, now);
        Ok(active.then_some(record))
    }

    /// Records EXPIRED at the first look after expiry. The token is inactive whether or
    /// not this write lands, so a failure is only logged.
    pub(super) async fn record_expiry(&self, tenant_id: i64, kind: TokenKind, id: i64, now: i64) {
        let step = (kind, Selection::Token(id), Event::LifetimePassed);
        match self
            .store
            .transitions(tenant_id, &[step], now, "system")
            .await
        {
            Ok(changes) => {
                if let Err(e) = self.apply(&changes).await {
                    tracing::warn!(error = %e, "could not apply a token's expiry to the caches");
                }
            }
            // The cached record stays: past its lifetime it reads as inactive, and the
            // next look tries this write again.
            Err(e) => {
                tracing::warn!(error = %e, "could not record a token's expiry");
            }
        }
    }
}
