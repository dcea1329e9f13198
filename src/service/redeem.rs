//! Single use of codes and refresh tokens (RFC 6749 §4.1.3, §6, §10.5; RFC 6819
//! §5.2.2.3): a credential is spent once, its reuse revokes its grant, and a code in
//! the wrong hands is spent so that the rightful exchange fails too.

use super::authenticate::AuthenticatedClient;
use super::issue::{narrowed_scope, Issuance, TokenResponse};
use super::openid::SignIn;
use super::token_text::presented_digest;
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::audit::Actor;
use crate::domain::pkce::verifier_meets;
use crate::domain::scope::Scope;
use crate::domain::tenant::Tenant;
use crate::domain::token::{self, Event, Refusal, Revocation, TokenKind};
use crate::store::{ChangedBy, ClientRecord, Rotation, Selection, Step, TokenRecord};
use secrecy::{ExposeSecret, SecretString};

/// The client presenting a code or a refresh token, and who it is in a token's history
/// (the client, from the request's address).
#[allow(missing_debug_implementations, reason = "holds a client's secret hash")]
pub(super) struct Presenter<'a> {
    pub client: &'a ClientRecord,
    pub by: ChangedBy,
}

/// What a code was exchanged for, and whose it was.
pub(super) struct Exchanged {
    pub response: TokenResponse,
    pub username: String,
    pub grant_id: String,
    /// When the user entered the password for the sign-in the code came from.
    pub auth_time: Option<i64>,
}

impl Gateway {
    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6). A second
    /// exchange of a code fails and revokes every token issued from it (SPEC §7).
    pub(super) async fn exchange_code(
        &self,
        tenant: &Tenant,
        presenter: &Presenter<'_>,
        code: &SecretString,
        redirect_uri: Option<&str>,
        verifier: Option<&SecretString>,
        now: i64,
    ) -> Result<Exchanged> {
        let client = presenter.client;
        let invalid =
            || Error::InvalidGrant("the authorization code is invalid, expired or already used");
        let record = self
            .single_use(
                tenant,
                presenter,
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
            self.spend_leaked_code(&record, &presenter.by, now).await?;
            return Err(Error::InvalidGrant(
                "redirect_uri differs from the authorization request",
            ));
        }
        match (&t.code_challenge, verifier) {
            (Some(challenge), Some(verifier)) => {
                if !verifier_meets(verifier.expose_secret(), challenge) {
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
        let username = t.username.clone().ok_or_else(invalid)?;
        let issuance = Issuance {
            tenant,
            client,
            username: Some(username.clone()),
            scope: Scope::granted(&t.scope),
            with_refresh: true,
            grant_id: t.grant_id.clone(),
            grant_started_at: t.grant_started_at,
            auth_time: t.auth_time,
            sid: t.sid.clone(),
            subject: None,
        };
        let response = self
            .spend(&record, issuance, now, &presenter.by, invalid)
            .await?;
        let sign_in = SignIn {
            client_id: &client.client_id,
            username: &username,
            auth_time: t.auth_time,
            sid: t.sid.as_deref(),
            nonce: t.nonce.as_deref(),
        };
        let response = self.with_id_token(tenant, response, sign_in, now).await?;
        Ok(Exchanged {
            response,
            username,
            grant_id: t.grant_id.clone(),
            auth_time: t.auth_time,
        })
    }

    /// The refresh grant: rotate the refresh token, supersede its access token. A
    /// rotated refresh token presented again revokes its whole grant (SPEC §7).
    pub(super) async fn refresh(
        &self,
        tenant: &Tenant,
        presenter: &Presenter<'_>,
        presented: &SecretString,
        scope: Option<&str>,
        now: i64,
    ) -> Result<TokenResponse> {
        let invalid = || Error::InvalidGrant("the refresh token is invalid, expired or revoked");
        let record = self
            .single_use(
                tenant,
                presenter,
                TokenKind::Refresh,
                presented,
                now,
                invalid,
            )
            .await?;
        // A refresh token from before the grant's end was enforced may outlive it.
        if now >= record.token.grant_started_at + tenant.settings.lifetimes.grant_max_lifetime {
            return Err(invalid());
        }
        let t = &record.token;
        let issuance = Issuance {
            tenant,
            client: presenter.client,
            username: t.username.clone(),
            scope: narrowed_scope(&t.scope, scope)?,
            with_refresh: true,
            grant_id: t.grant_id.clone(),
            grant_started_at: t.grant_started_at,
            auth_time: t.auth_time,
            sid: t.sid.clone(),
            subject: None,
        };
        let response = self
            .spend(&record, issuance, now, &presenter.by, invalid)
            .await?;
        let Some(username) = &t.username else {
            return Ok(response);
        };
        // A refresh's ID token is about the same sign-in, and carries no nonce (Core
        // §12.2).
        let sign_in = SignIn {
            client_id: &presenter.client.client_id,
            username,
            auth_time: t.auth_time,
            sid: t.sid.as_deref(),
            nonce: None,
        };
        self.with_id_token(tenant, response, sign_in, now).await
    }

    /// Finds `presented` as a usable single-use credential of `kind` (a refresh token or
    /// a code) issued to `client`. One that was already used revokes its grant
    /// (`refresh_reuse`, `code_reuse`); one past its lifetime is recorded EXPIRED. Every
    /// failure reads as `invalid()`, never why.
    pub(super) async fn single_use(
        &self,
        tenant: &Tenant,
        presenter: &Presenter<'_>,
        kind: TokenKind,
        presented: &SecretString,
        now: i64,
        invalid: fn() -> Error,
    ) -> Result<TokenRecord> {
        let client = presenter.client;
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
                self.spend_leaked_code(&record, &presenter.by, now).await?;
            }
            return Err(invalid());
        }
        if token::lifetime_passed(record.state, record.token.expires_at, now) {
            let t = &record.token;
            self.record_expiry(t.tenant_id, t.kind, record.id, now)
                .await;
            return Err(invalid());
        }
        match token::apply(kind, record.state, Event::redemption(kind)) {
            Ok(_) => Ok(record),
            Err(Refusal::Replay) => {
                let grant = &record.token.grant_id;
                self.revoke_grant(tenant, grant, reuse(kind), now, &presenter.by)
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
        mut issuance: Issuance<'_>,
        now: i64,
        by: &ChangedBy,
        invalid: fn() -> Error,
    ) -> Result<TokenResponse> {
        let tenant = issuance.tenant;
        if let Some(username) = &record.token.username {
            let user = self
                .directory
                .user(&*self.store, tenant.id, username)
                .await?;
            let user = user.filter(|u| u.enabled).ok_or_else(invalid)?;
            issuance.subject = Some(user.subject.clone());
        }
        let signer = self.access_token_signer(&issuance).await?;
        let (tokens, response) = issuance.mint(now, signer.as_deref().map(|k| &k.signer))?;
        let write = self.store.redeem(record, &tokens, now, by).await?;
        match self.settle(write).await? {
            Rotation::Rotated => Ok(response),
            Rotation::Lost => {
                self.revoke_grant(
                    tenant,
                    &record.token.grant_id,
                    reuse(record.token.kind),
                    now,
                    by,
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
        by: &ChangedBy,
        now: i64,
    ) -> Result<()> {
        let step = Step::new(
            TokenKind::AuthorizationCode,
            Selection::Token(record.id),
            Event::Exchange,
        );
        let write = self
            .store
            .transitions(record.token.tenant_id, &[step], now, by)
            .await?;
        self.settle(write).await
    }

    /// After a code exchange was refused with `refusal`: a code that was presented by
    /// anyone but its own client (another client, another tenant's client, a client
    /// that failed to authenticate, at whichever tenant's endpoint) has leaked, and is
    /// spent wherever it lives, so that the rightful exchange fails too (RFC 9700
    /// §4.5). Refusals that say nothing of the presenter (a rate limit, an outage)
    /// spend nothing: the caller may simply try again.
    pub async fn refused_code_exchange(
        &self,
        code: &str,
        presenter: Option<&AuthenticatedClient>,
        refusal: &Error,
        origin: &Origin,
    ) -> Result<()> {
        let spends = match refusal {
            Error::InvalidRequest(_)
            | Error::InvalidClient
            | Error::InvalidGrant(_)
            | Error::UnauthorizedClient(_)
            | Error::UnsupportedGrantType
            | Error::InvalidScope(_)
            | Error::Unauthenticated
            | Error::Forbidden
            | Error::UnknownTenant
            | Error::Invalid { .. }
            | Error::NotFound(_)
            | Error::Duplicate(_)
            | Error::ManagedByFile(_) => true,
            Error::Unavailable
            | Error::Internal(_)
            | Error::Hash(_)
            | Error::RateLimited(_)
            | Error::Overloaded => false,
        };
        let Some(digest) = presented_digest(code).filter(|_| spends) else {
            return Ok(());
        };
        let Some(record) = self.store.code_in_any_tenant(&digest).await? else {
            return Ok(());
        };
        let rightful = presenter.is_some_and(|client| {
            client.tenant_id() == record.token.tenant_id && client.id() == record.token.client_id
        });
        if rightful {
            // Its own client's mistakes were judged by the exchange itself.
            return Ok(());
        }
        let actor = match presenter {
            Some(client) => Actor::client(client.id()),
            None => Actor::Unauthenticated,
        };
        let by = ChangedBy::from_address(actor, origin.address());
        self.spend_leaked_code(&record, &by, now()).await
    }

    pub(super) async fn revoke_grant(
        &self,
        tenant: &Tenant,
        grant_id: &str,
        how: Revocation,
        now: i64,
        by: &ChangedBy,
    ) -> Result<()> {
        let selection = Selection::Grant(grant_id.to_owned());
        let steps = Step::access_and_refresh(selection, Event::Revoke(how));
        self.revoke_steps(tenant, &steps, how, now, by).await
    }
}

/// Why a grant is revoked when a credential of `kind` comes back after use.
fn reuse(kind: TokenKind) -> Revocation {
    match kind {
        TokenKind::AuthorizationCode => Revocation::CodeReuse,
        TokenKind::Access | TokenKind::Refresh => Revocation::RefreshReuse,
    }
}
