//! Token issuance (RFC 6749), introspection (RFC 7662) and revocation (RFC 7009).

use super::authenticate::Introspector;
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::client::is_scope_token;
use crate::domain::principal::qualified_name;
use crate::domain::tenant::Tenant;
use crate::domain::token::{self, Event, Refusal, Revocation, TokenKind};
use crate::store::{ClientRecord, Digest, NewToken, Rotation, Selection, TokenRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// A grant at the token endpoint.
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
    fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials { .. } => "client_credentials",
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::Password { .. } => "password",
            Grant::RefreshToken { .. } => "refresh_token",
        }
    }
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

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

/// SHA-256 of a token: the only form in which tokens are stored or cached.
pub fn digest(token: &str) -> Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// The digest of a presented token, or `None` when no token of ours could look like it
/// (longer than 128 characters, or outside base64url): such input is refused before
/// any lookup or cache entry. Tokens and codes are `random_string(32)`, 43 characters.
pub fn presented_digest(token: &str) -> Option<Digest> {
    let plausible = (1..=MAX_TOKEN_CHARS).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plausible.then(|| digest(token))
}

/// Longest presented token looked up; ours are 43 characters.
const MAX_TOKEN_CHARS: usize = 128;

pub fn random_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

impl Gateway {
    // ---- the token endpoint -----------------------------------------------------------

    /// Runs a grant for an authenticated client. Every token in the answer is committed
    /// before this returns.
    pub async fn grant(
        &self,
        client: &ClientRecord,
        grant: Grant,
        origin: &Origin,
    ) -> Result<TokenResponse> {
        if !client.grant_types.iter().any(|g| g == grant.name()) {
            return Err(Error::UnauthorizedClient(
                "the client may not use this grant type",
            ));
        }
        let tenant = self
            .directory
            .tenant_by_id(client.tenant_id)
            .ok_or(Error::InvalidClient)?;
        let now = now();
        match grant {
            Grant::ClientCredentials { scope } => {
                let scope = allowed_scope(client, scope.as_deref())?;
                // RFC 6749 §4.4.3: no refresh token for client credentials.
                let issuance = Issuance {
                    tenant: &tenant,
                    client,
                    username: None,
                    scope,
                    with_refresh: false,
                    grant_id: random_string(16),
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
                    grant_id: random_string(16),
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
        }
    }

    async fn issue(&self, issuance: Issuance<'_>, now: i64) -> Result<TokenResponse> {
        let (tokens, response) = issuance.mint(now);
        self.store.insert_tokens(&tokens).await?;
        Ok(response)
    }

    /// The refresh grant: rotate the refresh token, supersede its access token. A
    /// rotated refresh token presented again revokes its whole grant (SPEC §7).
    async fn refresh(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        presented: &SecretString,
        scope: Option<&str>,
        now: i64,
    ) -> Result<TokenResponse> {
        let invalid = || Error::InvalidGrant("the refresh token is invalid, expired or revoked");
        let record = self
            .single_use(tenant, client, TokenKind::Refresh, presented, now, invalid)
            .await?;
        // A refresh token from before the grant's end was enforced may outlive it.
        if now >= record.token.grant_started_at + tenant.lifetimes.grant_max_lifetime {
            return Err(invalid());
        }
        let issuance = Issuance {
            tenant,
            client,
            username: record.token.username.clone(),
            scope: narrowed_scope(&record.token.scope, scope)?,
            with_refresh: true,
            grant_id: record.token.grant_id.clone(),
            grant_started_at: record.token.grant_started_at,
        };
        self.spend(&record, issuance, now, invalid).await
    }

    /// Finds `presented` as a usable single-use credential of `kind` (a refresh token or
    /// a code) issued to `client`. One that was already used revokes its grant
    /// (`refresh_reuse`, `code_reuse`); one past its lifetime is recorded EXPIRED. Every
    /// failure reads as `invalid()`, never why.
    pub(super) async fn single_use(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        kind: TokenKind,
        presented: &SecretString,
        now: i64,
        invalid: fn() -> Error,
    ) -> Result<TokenRecord> {
        let Some(digest) = presented_digest(presented.expose_secret()) else {
            return Err(invalid());
        };
        let record = self.store.token(tenant.id, &digest).await?;
        let record = record
            .filter(|r| r.token.kind == kind)
            .ok_or_else(invalid)?;
        if record.token.client_id != client.client_id {
            // A code in the wrong client's hands has leaked: spend it, so that the
            // rightful exchange fails too (RFC 9700 §4.5).
            if kind == TokenKind::AuthorizationCode {
                self.spend_leaked_code(&record, client, now).await?;
            }
            return Err(invalid());
        }
        if record.state == token::State::Active && now >= record.token.expires_at {
            self.record_expiry(&record, now).await;
            return Err(invalid());
        }
        match token::apply(kind, record.state, redemption(kind)) {
            Ok(_) => Ok(record),
            Err(Refusal::Replay) => {
                let actor = format!("client:{}", client.client_id);
                self.revoke_grant(tenant, &record.token.grant_id, reuse(kind), now, &actor)
                    .await?;
                Err(invalid())
            }
            Err(Refusal::Final | Refusal::NotApplicable) => Err(invalid()),
        }
    }

    /// Spends `record` and stores the tokens of `issuance` in one transaction, once its
    /// user is still allowed to hold tokens. Losing a race to a concurrent use is a
    /// second use: the grant is revoked.
    pub(super) async fn spend(
        &self,
        record: &TokenRecord,
        issuance: Issuance<'_>,
        now: i64,
        invalid: fn() -> Error,
    ) -> Result<TokenResponse> {
        let tenant = issuance.tenant;
        if let Some(username) = &record.token.username {
            let user = self
                .directory
                .user(&self.store, tenant.id, username)
                .await?;
            if !user.is_some_and(|u| u.enabled) {
                return Err(invalid());
            }
        }
        let actor = format!("client:{}", issuance.client.client_id);
        let (tokens, response) = issuance.mint(now);
        match self.store.redeem(record, &tokens, now, &actor).await? {
            Rotation::Rotated(changed) => {
                self.tokens.forget(&changed);
                Ok(response)
            }
            Rotation::Lost => {
                self.revoke_grant(
                    tenant,
                    &record.token.grant_id,
                    reuse(record.token.kind),
                    now,
                    &actor,
                )
                .await?;
                Err(invalid())
            }
        }
    }

    /// Spends a code that was presented by the wrong client or with the wrong
    /// `redirect_uri`. A code already spent or expired stays as it is.
    pub(super) async fn spend_leaked_code(
        &self,
        record: &TokenRecord,
        presenter: &ClientRecord,
        now: i64,
    ) -> Result<()> {
        let step = (
            TokenKind::AuthorizationCode,
            Selection::Token(record.id),
            Event::Exchange,
        );
        let actor = format!("client:{}", presenter.client_id);
        let changed = self
            .store
            .transitions(record.token.tenant_id, &[step], now, &actor)
            .await?;
        self.tokens.forget(&changed);
        Ok(())
    }

    pub(super) async fn revoke_grant(
        &self,
        tenant: &Tenant,
        grant_id: &str,
        how: Revocation,
        now: i64,
        actor: &str,
    ) -> Result<()> {
        let selection = Selection::Grant(grant_id.to_owned());
        let steps = [TokenKind::Access, TokenKind::Refresh]
            .map(|k| (k, selection.clone(), Event::Revoke(how)));
        let changed = self
            .store
            .transitions(tenant.id, &steps, now, actor)
            .await?;
        self.tokens.forget(&changed);
        Ok(())
    }

    // ---- introspection and revocation ---------------------------------------------------

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
        let t = &record.token;
        if let Introspector::OwnTokens { client_id } = introspector {
            if *client_id != t.client_id {
                return Ok(Introspection::inactive());
            }
        }
        let username = t
            .username
            .as_deref()
            .map(|u| qualified_name(u, &tenant.domain));
        Ok(Introspection::Active(Box::new(ActiveToken {
            active: true,
            scope: t.scope.clone(),
            client_id: t.client_id.clone(),
            sub: username.clone().unwrap_or_else(|| t.client_id.clone()),
            username,
            token_type: match t.kind {
                TokenKind::Refresh => "refresh_token",
                TokenKind::Access | TokenKind::AuthorizationCode => "Bearer",
            },
            exp: t.expires_at,
            iat: t.issued_at,
            nbf: t.not_before,
            aud: t.client_id.clone(),
            iss: tenant.issuer.clone(),
            jti: t.jti.clone(),
        })))
    }

    /// RFC 7009: revokes a token of `client` and its cascade (SPEC §6). Unknown tokens,
    /// tokens already revoked and another client's tokens change nothing.
    pub async fn revoke(&self, client: &ClientRecord, token: &str) -> Result<()> {
        let Some(tenant) = self.directory.tenant_by_id(client.tenant_id) else {
            return Err(Error::InvalidClient);
        };
        let Some(digest) = presented_digest(token) else {
            return Ok(());
        };
        let Some(record) = self.store.token(tenant.id, &digest).await? else {
            return Ok(());
        };
        if record.token.client_id != client.client_id {
            return Ok(());
        }
        // RFC 7009 covers access and refresh tokens only.
        if record.token.kind == TokenKind::AuthorizationCode {
            return Ok(());
        }
        let steps = super::admin::revocation_steps(&record, Event::Revoke(Revocation::ByClient));
        let changed = self
            .store
            .transitions(
                tenant.id,
                &steps,
                now(),
                &format!("client:{}", client.client_id),
            )
            .await?;
        self.tokens.forget(&changed);
        Ok(())
    }

    /// The token with this digest in this tenant if it is active now, from the cache or
    /// with one indexed read. A token found past its lifetime is recorded EXPIRED.
    pub async fn live_token(
        &self,
        tenant: &Tenant,
        digest: &Digest,
        now: i64,
    ) -> Result<Option<Arc<TokenRecord>>> {
        let record = match self.tokens.get(digest) {
            Some(record) => record,
            None => {
                let epoch = self.tokens.epoch();
                let Some(record) = self.store.token(tenant.id, digest).await? else {
                    return Ok(None);
                };
                let record = Arc::new(record);
                if token::is_active(
                    record.state,
                    record.token.not_before,
                    record.token.expires_at,
                    now,
                ) {
                    self.tokens.insert(record.clone(), epoch);
                }
                record
            }
        };
        if record.token.tenant_id != tenant.id {
            return Ok(None);
        }
        if record.state == token::State::Active && now >= record.token.expires_at {
            self.record_expiry(&record, now).await;
            return Ok(None);
        }
        let active = token::is_active(
            record.state,
            record.token.not_before,
            record.token.expires_at,
            now,
        );
        Ok(active.then_some(record))
    }

    /// Records EXPIRED at the first look after expiry. The token is inactive whether or
    /// not this write lands, so a failure is only logged.
    pub(super) async fn record_expiry(&self, record: &TokenRecord, now: i64) {
        let t = &record.token;
        let step = (t.kind, Selection::Token(record.id), Event::LifetimePassed);
        match self
            .store
            .transitions(t.tenant_id, &[step], now, "system")
            .await
        {
            Ok(changed) => self.tokens.forget(&changed),
            Err(e) => {
                self.tokens.forget(&[t.digest]);
                tracing::warn!(error = %e, "could not record a token's expiry");
            }
        }
    }
}

/// The event that spends a single-use credential of `kind`.
fn redemption(kind: TokenKind) -> Event {
    match kind {
        TokenKind::AuthorizationCode => Event::Exchange,
        TokenKind::Access | TokenKind::Refresh => Event::Refresh,
    }
}

/// Why a grant is revoked when a credential of `kind` comes back after use.
fn reuse(kind: TokenKind) -> Revocation {
    match kind {
        TokenKind::AuthorizationCode => Revocation::CodeReuse,
        TokenKind::Access | TokenKind::Refresh => Revocation::RefreshReuse,
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
fn narrowed_scope(original: &str, requested: Option<&str>) -> Result<String> {
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

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = random_string(32);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, random_string(32));
    }
}
