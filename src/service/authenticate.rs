//! Who is calling: clients by secret (RFC 6749 §2.3.1), users by password, and the
//! introspection caller (RFC 7662 §2.1), with the lockout of SPEC §4.
//!
//! A secret check goes like this. A pair verified before, of a principal the cache
//! shows usable, is accepted at once. Anything else first passes the failed-attempt
//! limit of its source address (429 before any hashing), then waits for a hash permit in
//! the fair queue, and only then reads the principal from the database: the lock is
//! decided after the permit, so a guess that waited behind others sees every failure
//! they recorded. The permit is held until the outcome is written, which leaves at most
//! one unrecorded guess per permit. A failure is counted in the database (one atomic
//! `UPDATE`, shared by every instance); a success resets the count only if no lock was
//! set meanwhile, and fails if one was.

use super::credentials::Holder;
use super::hasher::Lane;
use super::{now, Caller, Error, Gateway, Origin, Result};
use crate::domain::audit::{Actor, AuditAction};
use crate::domain::client::is_client_id;
use crate::domain::permission::{authorize, requirement, Requirement};
use crate::domain::principal::{qualified_name, split_sign_in_name, validate_username};
use crate::domain::tenant::{Tenant, TenantId};
use crate::domain::token::TokenKind;
use crate::store::{AuditEvent, ClientRecord, LockTarget, UserRecord};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// Client credentials as presented, before authentication.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    /// `None` for a public client, which sends only its id.
    pub secret: Option<SecretString>,
}

/// Where a client may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientScope {
    /// Only clients of the path's tenant.
    ThisTenant,
    /// The super tenant's token and revocation endpoints accept a client of any tenant,
    /// as WSO2 does; the token then belongs to the client's tenant (SPEC §6).
    AnyTenant,
}

/// A Basic pair percent-decoded as client credentials (RFC 6749 §2.3.1), when its name
/// decodes to something shaped like a client id.
#[derive(Debug)]
pub struct BasicClient {
    pub client_id: String,
    /// `None` when the secret is not valid percent-encoding.
    pub secret: Option<SecretString>,
}

/// How a caller presented itself at the introspection endpoint or the admin API.
#[derive(Debug)]
pub enum Presented {
    /// `Authorization: Basic`; the name may be a client id or `USERNAME@TENANT`.
    Basic {
        name: String,
        secret: SecretString,
        /// The pair as client credentials, when the name decodes to a client id.
        as_client: Option<BasicClient>,
    },
    Bearer(SecretString),
    /// `client_id` and `client_secret` in the form body.
    ClientPost(ClientCredentials),
    Nothing,
}

/// Who may see what at the introspection endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspector {
    /// A user holding the rule's permissions, an allowed client, or anyone under an
    /// unsecured rule: every token of the tenant.
    Tenant { caller: String },
    /// Any other client: only tokens issued to itself.
    OwnTokens { client_id: String },
}

impl Introspector {
    pub fn caller(&self) -> &str {
        match self {
            Introspector::Tenant { caller } => caller,
            Introspector::OwnTokens { client_id } => client_id,
        }
    }
}

/// An introspector spends the budget of the tenant whose endpoint it calls.
impl Caller for Introspector {
    fn name(&self) -> &str {
        self.caller()
    }

    fn counted_in(&self, addressed: &Tenant) -> TenantId {
        addressed.id
    }
}

/// A client spends its own tenant's budget, at whichever endpoint it calls.
impl Caller for AuthenticatedClient {
    fn name(&self) -> &str {
        self.id()
    }

    fn counted_in(&self, _: &Tenant) -> TenantId {
        self.tenant_id()
    }
}

/// A principal whose secret can be checked and locked.
pub(super) trait Lockable {
    fn secret_hash(&self) -> Option<&str>;
    fn failed_attempts(&self) -> i64;
    /// Whether it may sign in at all now: enabled and not locked.
    fn usable(&self, now: i64) -> bool;
    /// The same after its failure count was reset.
    fn with_no_failures(self) -> Self;
}

impl Lockable for UserRecord {
    fn secret_hash(&self) -> Option<&str> {
        Some(&self.password_hash)
    }
    fn failed_attempts(&self) -> i64 {
        self.failed_attempts
    }
    fn usable(&self, now: i64) -> bool {
        self.enabled && !is_locked(self.locked_until, now)
    }
    fn with_no_failures(self) -> Self {
        UserRecord {
            failed_attempts: 0,
            ..self
        }
    }
}

impl Lockable for ClientRecord {
    fn secret_hash(&self) -> Option<&str> {
        self.secret_hash.as_deref()
    }
    fn failed_attempts(&self) -> i64 {
        self.failed_attempts
    }
    fn usable(&self, now: i64) -> bool {
        !is_locked(self.locked_until, now)
    }
    fn with_no_failures(self) -> Self {
        ClientRecord {
            failed_attempts: 0,
            ..self
        }
    }
}

/// Whose secret a sign-in checks, for the audit log's actions and the lock's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrincipalKind {
    User,
    Client,
}

impl PrincipalKind {
    fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Client => "client",
        }
    }

    fn sign_in_failure(self) -> AuditAction {
        match self {
            PrincipalKind::User => AuditAction::UserSignInFailure,
            PrincipalKind::Client => AuditAction::ClientSignInFailure,
        }
    }

    fn lock(self) -> AuditAction {
        match self {
            PrincipalKind::User => AuditAction::UserLock,
            PrincipalKind::Client => AuditAction::ClientLock,
        }
    }
}

/// One secret check: whose, in which queue, and what the audit log calls it.
struct Attempt<'a> {
    /// The tenant whose queue the check waits in and whose audit log records it.
    tenant_id: TenantId,
    /// The name as presented, for the audit log.
    name: &'a str,
    kind: PrincipalKind,
    holder: Holder<'a>,
    origin: &'a Origin,
}

impl Attempt<'_> {
    fn target(&self) -> LockTarget<'_> {
        match self.holder {
            Holder::User {
                tenant_id,
                username,
            } => LockTarget::User {
                tenant_id,
                username,
            },
            Holder::Client { client_id } => LockTarget::Client { client_id },
        }
    }
}

/// A client that proved who it is. Handlers learn its id and tenant; the stored record
/// behind it stays in the service.
#[derive(Clone)]
#[allow(missing_debug_implementations, reason = "holds a secret hash")]
pub struct AuthenticatedClient(pub(super) Arc<ClientRecord>);

impl AuthenticatedClient {
    pub fn id(&self) -> &str {
        &self.0.client_id
    }

    pub fn tenant_id(&self) -> TenantId {
        self.0.tenant_id
    }
}

impl Gateway {
    /// Authenticates a client at `tenant`'s path. A wrong secret, an unknown client, a
    /// locked client and a client of another tenant are all `InvalidClient`, and all
    /// cost one argon2 check. Failures count toward the client's lock (SPEC §4).
    pub async fn authenticate_client(
        &self,
        tenant: &Tenant,
        presented: &ClientCredentials,
        scope: ClientScope,
        allow_public: bool,
        origin: &Origin,
    ) -> Result<AuthenticatedClient> {
        // No stored id could equal this one: refuse before any lookup, cache or hash.
        if !is_client_id(&presented.client_id) {
            return Err(Error::InvalidClient);
        }
        let belongs = |c: &ClientRecord| {
            (scope == ClientScope::AnyTenant || c.tenant_id == tenant.id)
                && self.directory.tenant_by_id(c.tenant_id).is_some()
        };
        let client = self
            .directory
            .client(&*self.store, &presented.client_id)
            .await?
            .filter(|c| belongs(c));
        let Some(secret) = &presented.secret else {
            return match client {
                Some(client) if client.secret_hash.is_none() && allow_public => {
                    Ok(AuthenticatedClient(client))
                }
                Some(_) | None => Err(Error::InvalidClient),
            };
        };
        let attempt = Attempt {
            tenant_id: client.as_ref().map_or(tenant.id, |c| c.tenant_id),
            name: &presented.client_id,
            kind: PrincipalKind::Client,
            holder: Holder::Client {
                client_id: &presented.client_id,
            },
            origin,
        };
        let load = async || {
            let fresh = self.store.client(&presented.client_id).await?;
            Ok(fresh.filter(|c| belongs(c)))
        };
        let epoch = self.directory.epoch();
        let checked = self.check_secret(&attempt, client, load, secret).await?;
        let client = checked.ok_or(Error::InvalidClient)?;
        self.directory.remember_client(&client, epoch);
        Ok(AuthenticatedClient(client))
    }

    /// Authenticates `USERNAME[@TENANT]` with a password at `tenant`'s path. A user of
    /// another tenant does not authenticate here; a disabled or locked user fails like
    /// a wrong password, at the same cost. Failures count toward the user's lock.
    pub async fn authenticate_user(
        &self,
        tenant: &Tenant,
        sign_in_name: &str,
        password: &SecretString,
        origin: &Origin,
    ) -> Result<Option<Arc<UserRecord>>> {
        let (username, domain) = split_sign_in_name(sign_in_name, &self.super_tenant, |d| {
            self.directory.is_tenant(d)
        });
        // A name no user could have is refused before any lookup, cache or hash.
        if domain != tenant.domain || validate_username(username).is_err() {
            return Ok(None);
        }
        let user = self
            .directory
            .user(&*self.store, tenant.id, username)
            .await?;
        let attempt = Attempt {
            tenant_id: tenant.id,
            name: sign_in_name,
            kind: PrincipalKind::User,
            holder: Holder::User {
                tenant_id: tenant.id,
                username,
            },
            origin,
        };
        let load = async || Ok(self.store.user(tenant.id, username).await?);
        let epoch = self.directory.epoch();
        let checked = self.check_secret(&attempt, user, load, password).await?;
        if let Some(user) = &checked {
            self.directory.remember_user(user, epoch);
        }
        Ok(checked)
    }

    /// The lockout-safe secret check of the module doc. `cached` is what the directory
    /// holds; `load` reads the principal afresh from the database. Returns the
    /// principal when the secret is right and it may sign in.
    async fn check_secret<R: Lockable>(
        &self,
        attempt: &Attempt<'_>,
        cached: Option<Arc<R>>,
        load: impl AsyncFnOnce() -> Result<Option<R>>,
        secret: &SecretString,
    ) -> Result<Option<Arc<R>>> {
        let now = now();
        if let Some(principal) = cached.filter(|p| p.usable(now)) {
            let remembered = principal
                .secret_hash()
                .is_some_and(|hash| self.credentials.remembered(attempt.holder, hash, secret));
            if remembered {
                return Ok(Some(principal));
            }
        }
        let address = attempt.origin.ip;
        self.limits.check_address(address)?;
        let lane = Lane {
            tenant_id: attempt.tenant_id,
            address,
        };
        let permit = self.credentials.permit(lane).await?;
        let fresh = load().await?;
        let now = super::now();
        let stored = fresh
            .as_ref()
            .filter(|p| p.usable(now))
            .and_then(|p| p.secret_hash());
        let matched = self
            .credentials
            .verify(&permit, attempt.holder, stored, secret)
            .await?;
        match fresh {
            Some(principal) if matched => {
                // A lock set by a concurrent failure since the read stands, and this
                // sign-in fails with it; it was not a failure of its own, so no count.
                if principal.failed_attempts() == 0 {
                    return Ok(Some(Arc::new(principal)));
                }
                let write = self.store.reset_failures(attempt.target(), now).await?;
                if self.settle(write).await?.is_none() {
                    return Ok(None);
                }
                Ok(Some(Arc::new(principal.with_no_failures())))
            }
            principal => {
                let target = principal.is_some().then(|| attempt.target());
                self.sign_in_failed(attempt, target, now).await?;
                drop(permit);
                self.limits.record_failed_auth(address);
                Ok(None)
            }
        }
    }

    /// Audits a failed sign-in and counts it toward a lock when the principal exists.
    async fn sign_in_failed(
        &self,
        attempt: &Attempt<'_>,
        target: Option<LockTarget<'_>>,
        now: i64,
    ) -> Result<()> {
        let event = |actor: &Actor, action| {
            let address = attempt.origin.address();
            AuditEvent::new(attempt.tenant_id, now, actor, action, attempt.name, address)
        };
        let presented = Actor::Presented(attempt.name.to_owned());
        let failure = event(&presented, attempt.kind.sign_in_failure());
        let Some(target) = target else {
            return Ok(self.store.record_audit(&failure).await?);
        };
        let auth = &self.config.auth;
        let until = now + auth.lockout_seconds as i64;
        let lock = event(&Actor::System, attempt.kind.lock());
        let write = self
            .store
            .record_failure(
                target,
                i64::from(auth.lockout_attempts),
                until,
                &failure,
                &lock,
            )
            .await?;
        if self.settle(write).await?.is_some() {
            tracing::warn!(
                tenant_id = attempt.tenant_id.get(),
                principal = attempt.name,
                kind = attempt.kind.as_str(),
                "locked after repeated sign-in failures"
            );
        }
        Ok(())
    }

    /// Decides who the introspection caller is and whether it may introspect at all.
    pub async fn introspector(
        &self,
        tenant: &Tenant,
        presented: Presented,
        method: &str,
        path: &str,
        origin: &Origin,
    ) -> Result<Introspector> {
        let allowed_client = |id: &str| {
            tenant
                .settings
                .introspection_clients
                .iter()
                .any(|c| c == id)
        };
        let user_introspector = |user: &UserRecord| -> Result<Introspector> {
            authorize(&user.permissions, &tenant.rules, method, path)
                .map_err(|_| Error::Forbidden)?;
            Ok(Introspector::Tenant {
                caller: qualified_name(&user.username, &tenant.domain),
            })
        };
        let credentials = match presented {
            Presented::Nothing => {
                return match requirement(&tenant.rules, method, path) {
                    Requirement::Open => Ok(Introspector::Tenant {
                        caller: "anonymous".into(),
                    }),
                    Requirement::Permissions(_) => Err(Error::Unauthenticated),
                }
            }
            Presented::ClientPost(credentials) => credentials,
            Presented::Basic {
                name,
                secret,
                as_client,
            } => match self.basic_client(tenant, as_client).await? {
                Some(credentials) => credentials,
                None => {
                    let user = self
                        .authenticate_user(tenant, &name, &secret, origin)
                        .await?;
                    let user = user.ok_or(Error::Unauthenticated)?;
                    return user_introspector(&user);
                }
            },
            Presented::Bearer(token) => {
                return match self.bearer_caller(tenant, &token).await? {
                    BearerCaller::User(user) => user_introspector(&user),
                    BearerCaller::Client(id) if allowed_client(&id) => {
                        Ok(Introspector::Tenant { caller: id })
                    }
                    BearerCaller::Client(_) => Err(Error::Forbidden),
                };
            }
        };
        let client = self
            .authenticate_client(tenant, &credentials, ClientScope::ThisTenant, false, origin)
            .await?;
        Ok(if allowed_client(client.id()) {
            Introspector::Tenant {
                caller: client.id().to_owned(),
            }
        } else {
            Introspector::OwnTokens {
                client_id: client.id().to_owned(),
            }
        })
    }

    /// The caller behind a Bearer access token of this tenant: its enabled user, or, for
    /// a token without one, its client.
    pub(super) async fn bearer_caller(
        &self,
        tenant: &Tenant,
        token: &SecretString,
    ) -> Result<BearerCaller> {
        let digest = super::token_text::presented_digest(token.expose_secret())
            .ok_or(Error::Unauthenticated)?;
        let record = self
            .live_token(tenant, &digest, now())
            .await?
            .filter(|r| r.kind == TokenKind::Access)
            .ok_or(Error::Unauthenticated)?;
        match record.username() {
            Some(username) => {
                let user = self
                    .directory
                    .user(&*self.store, tenant.id, username)
                    .await?;
                let user = user.filter(|u| u.enabled).ok_or(Error::Unauthenticated)?;
                Ok(BearerCaller::User(user))
            }
            None => Ok(BearerCaller::Client(record.client_id().to_owned())),
        }
    }

    /// A Basic name that is the id of a client of this tenant makes the header client
    /// credentials (RFC 6749 §2.3.1); client ids are unreserved characters only, so no
    /// user name is mistaken for one. `None`: a user.
    async fn basic_client(
        &self,
        tenant: &Tenant,
        as_client: Option<BasicClient>,
    ) -> Result<Option<ClientCredentials>> {
        let Some(candidate) = as_client else {
            return Ok(None);
        };
        let client = self
            .directory
            .client(&*self.store, &candidate.client_id)
            .await?;
        if client.is_none_or(|c| c.tenant_id != tenant.id) {
            return Ok(None);
        }
        let secret = candidate.secret.ok_or(Error::InvalidClient)?;
        Ok(Some(ClientCredentials {
            client_id: candidate.client_id,
            secret: Some(secret),
        }))
    }
}

/// Who a Bearer token speaks for.
pub(super) enum BearerCaller {
    User(Arc<UserRecord>),
    Client(String),
}

/// Locked until a time still to come.
pub fn is_locked(locked_until: Option<i64>, now: i64) -> bool {
    locked_until.is_some_and(|until| until > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_still_to_come_is_a_lock() {
        assert!(is_locked(Some(101), 100));
        assert!(!is_locked(Some(100), 100));
        assert!(!is_locked(None, 100));
    }
}
