//! Introspection (RFC 7662): what a caller may know about a token. The lookup it
//! shares with Bearer callers is in `live_token.rs`.

use super::authenticate::Introspector;
use super::live_token::LiveToken;
use super::token_text::presented_digest;
use super::{now, Gateway, Result};
use crate::domain::tenant::{Tenant, TenantDomain};
use crate::domain::token::TokenKind;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::sync::Arc;

/// RFC 7662 §2.2. An inactive answer carries nothing but `active: false`.
#[derive(Debug)]
pub enum Introspection<'a> {
    Active(ActiveToken<'a>),
    Inactive,
}

/// An active token's answer, written straight from the cached token and its tenant:
/// nothing is copied to answer, the JSON is the only text made per request.
#[derive(Debug)]
pub struct ActiveToken<'a> {
    token: Arc<LiveToken>,
    tenant: &'a Tenant,
}

impl Serialize for Introspection<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Introspection::Active(active) => active.serialize(serializer),
            Introspection::Inactive => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("active", &false)?;
                map.end()
            }
        }
    }
}

impl Serialize for ActiveToken<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let t = &*self.token;
        let domain = &self.tenant.domain;
        let username = t.username().map(|name| QualifiedName(name, domain));
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("active", &true)?;
        if !t.scope().is_empty() {
            map.serialize_entry("scope", t.scope())?;
        }
        map.serialize_entry("client_id", t.client_id())?;
        if let Some(username) = &username {
            map.serialize_entry("username", username)?;
        }
        let token_type = match t.kind {
            TokenKind::Refresh => "refresh_token",
            TokenKind::Access | TokenKind::AuthorizationCode => "Bearer",
        };
        map.serialize_entry("token_type", token_type)?;
        map.serialize_entry("exp", &t.expires_at)?;
        map.serialize_entry("iat", &t.issued_at)?;
        map.serialize_entry("nbf", &t.not_before)?;
        match &username {
            Some(username) => map.serialize_entry("sub", username)?,
            None => map.serialize_entry("sub", t.client_id())?,
        }
        map.serialize_entry("aud", t.client_id())?;
        map.serialize_entry("iss", &self.tenant.issuer)?;
        map.serialize_entry("jti", t.jti())?;
        map.end()
    }
}

/// `user@tenant`, as `principal::qualified_name` spells it, written without being built.
struct QualifiedName<'a>(&'a str, &'a TenantDomain);

impl Serialize for QualifiedName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}@{}", self.0, self.1))
    }
}

impl Gateway {
    /// RFC 7662: what `introspector` may know about `token`. Any token that is not
    /// active, or not the caller's to see, is `{"active": false}`.
    pub async fn introspect<'a>(
        &self,
        tenant: &'a Tenant,
        introspector: &Introspector,
        token: &str,
    ) -> Result<Introspection<'a>> {
        let now = now();
        let Some(digest) = presented_digest(token) else {
            return Ok(Introspection::Inactive);
        };
        let Some(record) = self.live_token(tenant, &digest, now).await? else {
            return Ok(Introspection::Inactive);
        };
        if let Introspector::OwnTokens { client_id } = introspector {
            if client_id != record.client_id() {
                return Ok(Introspection::Inactive);
            }
        }
        Ok(Introspection::Active(ActiveToken {
            token: record,
            tenant,
        }))
    }
}
