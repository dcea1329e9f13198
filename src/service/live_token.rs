//! A token as the requests that present it see it: [`Gateway::live_token`] finds it in
//! the cache or the store and records its expiry at the first look after it; what the
//! cache keeps of it ([`LiveToken`]) is what introspection answers, what a Bearer caller
//! is, and what recording its expiry needs, and nothing else.
//!
//! A cached token costs its map entry and two allocations: the fixed fields, and one
//! text holding the client id, username, scope and `jti` end to end. With a String
//! each, and the whole stored row, a token took about 700 bytes; this keeps it near
//! 250 (README, "Performance").

use super::{Gateway, Result};
use crate::domain::audit::Actor;
use crate::domain::tenant::{Tenant, TenantId};
use crate::domain::token::{self, Event, State, TokenKind};
use crate::store::{Digest, Selection, Step, TokenRecord};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveToken {
    pub id: i64,
    pub tenant_id: TenantId,
    pub kind: TokenKind,
    pub state: State,
    pub issued_at: i64,
    pub not_before: i64,
    pub expires_at: i64,
    /// `client_id`, `username`, `scope` and `jti`, end to end.
    text: Box<str>,
    /// Where the client id, the username and the scope end in `text`.
    ends: [u32; 3],
    has_username: bool,
}

impl LiveToken {
    /// The cacheable form of `record`.
    pub fn of(record: &TokenRecord) -> Self {
        let t = &record.token;
        let username = t.username.as_deref().unwrap_or_default();
        let parts = [
            t.client_id.as_str(),
            username,
            t.scope.as_str(),
            t.jti.as_str(),
        ];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; 3];
        for (n, part) in parts.iter().enumerate() {
            text.push_str(part);
            if let Some(end) = ends.get_mut(n) {
                // Stored text is bounded far below 4 GiB (a request body is 64 KiB).
                *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            }
        }
        LiveToken {
            id: record.id,
            tenant_id: t.tenant_id,
            kind: t.kind,
            state: record.state,
            issued_at: t.issued_at,
            not_before: t.not_before,
            expires_at: t.expires_at,
            text: text.into_boxed_str(),
            ends,
            has_username: t.username.is_some(),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.text[..self.end(0)]
    }

    pub fn username(&self) -> Option<&str> {
        self.has_username
            .then(|| &self.text[self.end(0)..self.end(1)])
    }

    pub fn scope(&self) -> &str {
        &self.text[self.end(1)..self.end(2)]
    }

    pub fn jti(&self) -> &str {
        &self.text[self.end(2)..]
    }

    fn end(&self, n: usize) -> usize {
        self.ends[n] as usize
    }

    /// Approximately what this takes in memory, its text included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.len()
    }
}

impl Gateway {
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
    pub(super) async fn record_expiry(
        &self,
        tenant_id: TenantId,
        kind: TokenKind,
        id: i64,
        now: i64,
    ) {
        let step = Step::new(kind, Selection::Token(id), Event::LifetimePassed);
        match self
            .store
            .transitions(tenant_id, &[step], now, &Actor::System.into())
            .await
        {
            Ok(write) => {
                if let Err(e) = self.settle(write).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewToken;

    fn record(username: Option<&str>, scope: &str, client_id: &str) -> TokenRecord {
        TokenRecord {
            id: 7,
            token: NewToken {
                tenant_id: TenantId::new(3),
                kind: TokenKind::Refresh,
                digest: [1; 32],
                jti: "the-jti".into(),
                grant_id: "g".into(),
                grant_started_at: 1,
                refresh_digest: None,
                client_id: client_id.into(),
                username: username.map(Into::into),
                scope: scope.into(),
                issued_at: 10,
                not_before: 11,
                expires_at: 12,
                redirect_uri: Some("https://app/cb".into()),
                code_challenge: None,
                nonce: None,
                auth_time: None,
                sid: None,
            },
            state: State::Active,
            state_reason: None,
            state_changed_at: None,
            state_changed_by: None,
            state_changed_from: None,
        }
    }

    #[test]
    fn every_field_reads_back() {
        let live = LiveToken::of(&record(Some("alice"), "read write", "client-1"));
        assert_eq!(live.client_id(), "client-1");
        assert_eq!(live.username(), Some("alice"));
        assert_eq!(live.scope(), "read write");
        assert_eq!(live.jti(), "the-jti");
        assert_eq!(
            (live.id, live.tenant_id, live.kind, live.state),
            (7, TenantId::new(3), TokenKind::Refresh, State::Active)
        );
        assert_eq!(
            (live.issued_at, live.not_before, live.expires_at),
            (10, 11, 12)
        );
    }

    #[test]
    fn no_username_and_an_empty_one_differ_and_empty_parts_read_back() {
        let none = LiveToken::of(&record(None, "", "c"));
        assert_eq!((none.username(), none.scope()), (None, ""));
        let empty = LiveToken::of(&record(Some(""), "", "c"));
        assert_eq!(empty.username(), Some(""));
    }

    #[test]
    fn long_text_reads_back_whole() {
        let long = "s".repeat(70_000);
        let live = LiveToken::of(&record(Some("bob"), &long, "c"));
        assert_eq!((live.scope(), live.jti()), (long.as_str(), "the-jti"));
    }
}
