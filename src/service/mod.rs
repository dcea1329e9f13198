//! The use cases: authenticate callers, issue, introspect and revoke tokens, and start
//! the gateway. Handlers call these; these call the store and the pure domain.

pub mod admin;
pub mod authenticate;
pub mod authorize;
pub mod bootstrap;
pub mod cache;
pub mod console;
pub mod credentials;
pub mod freshness;
pub mod grant;
pub mod hasher;
pub mod introspect;
mod issue;
pub mod keys;
pub mod limits;
pub mod live_token;
pub mod logout;
pub mod metrics;
pub mod openid;
mod purge;
mod redeem;
mod revoke;
pub mod session;
pub mod token_text;

use crate::config::Config;
use crate::domain::tenant::{Tenant, TenantDomain, TenantId};
use crate::store::{self, Caches, Changes, Committed, Notice, Store};
use cache::{Directory, TokenCache};
use credentials::{Credentials, HashError};
use freshness::Freshness;
use ipnet::IpNet;
use keys::Keyring;
use limits::Limits;
use metrics::Metrics;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Errors of the use cases. The HTTP layer maps each to a status and an RFC 6749 code
/// in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (unknown client, wrong secret, wrong tenant).
    #[error("client authentication failed")]
    InvalidClient,
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unauthorized client: {0}")]
    UnauthorizedClient(&'static str),
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// A user or Bearer caller failed to authenticate.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller authenticated but lacks a permission.
    #[error("forbidden")]
    Forbidden,
    #[error("unknown tenant")]
    UnknownTenant,
    /// A request field has an invalid value; names the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The named object does not exist in this tenant.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The database could not be reached or failed to commit.
    #[error("the database is unavailable")]
    Unavailable,
    /// A unique key already holds this value; names the field.
    #[error("a duplicate of {0}")]
    Duplicate(&'static str),
    /// A tenant file declares what the API was asked to change; says which file.
    #[error("{0}")]
    ManagedByFile(String),
    /// Stored data or configuration that cannot be right; the detail is logged.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A rate limit (SPEC §9) refused the request; retry after this long.
    #[error("rate limited")]
    RateLimited(Duration),
    /// Too much work is already waiting (the password-check queue is full).
    #[error("overloaded")]
    Overloaded,
}

/// The service's boundary with the store: what a caller may learn of a store failure.
impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the database is unavailable");
                Error::Unavailable
            }
            store::Error::Batch(cause) => {
                tracing::warn!(error = %cause, "a batched write failed");
                Error::Unavailable
            }
            store::Error::WriterGone => Error::Unavailable,
            store::Error::Duplicate(what) => Error::Duplicate(what),
            other @ (store::Error::Corrupt(_)
            | store::Error::UnsupportedUrl(_)
            | store::Error::Migration(_)
            | store::Error::InUse(_)
            | store::Error::SingleInstance) => Error::Internal(other.to_string()),
        }
    }
}

impl From<hasher::Saturated> for Error {
    fn from(saturated: hasher::Saturated) -> Self {
        match saturated {
            hasher::Saturated::Address => Error::RateLimited(Duration::from_secs(1)),
            hasher::Saturated::Queue => Error::Overloaded,
        }
    }
}

impl From<limits::Limited> for Error {
    fn from(limited: limits::Limited) -> Self {
        Error::RateLimited(limited.retry_after)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the gateway cannot start. Start-up has its own errors: none of them is a
/// request's fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("tenant files: {0}")]
    TenantFiles(String),
    #[error("could not hash the administrator's password: {0}")]
    Hash(String),
    /// The master key or the signing keys it seals.
    #[error("signing keys: {0}")]
    Keys(String),
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Loading what the caches start with failed.
    #[error(transparent)]
    Service(#[from] Error),
}

/// Everything a request needs, built once at start and shared by every connection.
/// Its fields are the service's own: the layers above reach the store and the caches
/// only through its use cases, which settle every write and check freshness before
/// every cached read.
pub struct Gateway {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    credentials: Credentials,
    directory: Directory,
    tokens: TokenCache,
    /// Each tenant's signing keys, opened.
    keys: Keyring,
    limits: Limits,
    /// Whether the caches may answer, with other instances writing too.
    freshness: Arc<Freshness>,
    metrics: Arc<Metrics>,
    /// Where `/metrics` is served, once the listener is bound.
    metrics_address: std::sync::OnceLock<std::net::SocketAddr>,
    super_tenant: TenantDomain,
    trusted_proxies: Vec<IpNet>,
    draining: AtomicBool,
}

/// The caches and keys it holds are not for a log line: it names itself and its tenant.
impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("super_tenant", &self.super_tenant)
            .field("shared_store", &self.store.shared())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the gateway over a migrated and reconciled store.
    pub async fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Result<Self, StartupError> {
        let super_tenant = TenantDomain::parse(&config.server.super_tenant)
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let freshness = Arc::new(Freshness::new(store.shared()));
        let metrics = Arc::new(Metrics::default());
        let (keys, first_keys) = Keyring::open(&config.keys, &*store, freshness.clone()).await?;
        let gateway = Gateway {
            directory: Directory::new(
                config.server.public_url.clone(),
                super_tenant.clone(),
                freshness.clone(),
                metrics.clone(),
            ),
            credentials: Credentials::new().map_err(|e| StartupError::Hash(e.to_string()))?,
            tokens: TokenCache::new(freshness.clone(), metrics.clone()),
            keys,
            freshness,
            metrics,
            metrics_address: std::sync::OnceLock::new(),
            limits: Limits::new(config.rate_limits),
            super_tenant,
            trusted_proxies: config.trusted_proxies().map_err(StartupError::Config)?,
            store,
            config,
            draining: AtomicBool::new(false),
        };
        gateway.directory.reload_tenants(&*gateway.store).await?;
        gateway.settle(first_keys).await?;
        Ok(gateway)
    }

    /// The result of a committed write, once every cache of this instance is in line
    /// with it: what each use case calls after writing. Other instances learn of the
    /// same changes from the notice that committed with the write.
    pub async fn settle<T>(&self, write: Committed<T>) -> Result<T> {
        write.settle(self).await
    }
}

impl Caches for Gateway {
    type Error = Error;

    /// The one place where a change reaches the caches, whichever use case or instance
    /// made it.
    async fn apply(&self, changes: &Changes) -> Result<()> {
        self.tokens.forget(&changes.tokens);
        if !changes.signing_keys.is_empty() {
            self.keys.forget(&changes.signing_keys);
        }
        for (tenant_id, username) in &changes.users {
            self.directory.forget_user(*tenant_id, username);
        }
        for tenant_id in &changes.users_of_tenants {
            self.directory.forget_users_of(*tenant_id);
        }
        for client_id in &changes.clients {
            self.directory.forget_client(client_id);
        }
        if !changes.tenants.is_empty() {
            self.directory.reload_tenants(&*self.store).await?;
        }
        Ok(())
    }
}

impl Gateway {
    /// Applies what an instance (this one or another) told every instance.
    pub async fn apply_notice(&self, notice: &Notice) -> Result<()> {
        match notice {
            Notice::Changes { changes, .. } => return self.apply(changes).await,
            Notice::ForgetTenant(tenant_id) => {
                self.tokens.forget_tenant(Some(*tenant_id));
                self.directory.forget_tenant(*tenant_id);
                self.keys.forget(&[*tenant_id]);
            }
            Notice::ForgetAll => {
                self.tokens.forget_tenant(None);
                self.directory.forget_all();
                self.keys.forget_all();
            }
            Notice::Heartbeat(_) => return Ok(()),
        }
        self.directory.reload_tenants(&*self.store).await
    }

    /// The tenant a request addresses (`None`: the super tenant). While the caches are
    /// not trusted the tenant tables are read afresh first, so a tenant created or
    /// deactivated elsewhere is seen; a database that fails then answers 503.
    pub async fn tenant_for_request(&self, domain: Option<&str>) -> Result<Arc<Tenant>> {
        if !self.freshness.trusted() {
            self.directory.reload_tenants(&*self.store).await?;
        }
        let tenant = match domain {
            None => self.directory.super_tenant(),
            Some(domain) => self.directory.tenant(domain),
        };
        tenant.ok_or(Error::UnknownTenant)
    }

    /// A round trip to the database, for readiness.
    pub async fn database_answers(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Runs `job` every `period` for as long as the gateway lives.
    pub fn every<F, Fut>(self: &Arc<Self>, period: Duration, job: F)
    where
        F: Fn(Arc<Gateway>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let gateway = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(gateway) = gateway.upgrade() else {
                    break;
                };
                job(gateway).await;
            }
        });
    }

    /// Readiness turns to 503 from here on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Spends one request of the tenant's budget, before anything else is done for it:
    /// a limited request costs no hash (SPEC §9).
    pub fn admit_request(&self, tenant: &Tenant) -> Result<()> {
        Ok(self.limits.check_tenant(tenant)?)
    }

    /// Spends one request of an authenticated caller's budget in the tenant it counts
    /// against: a client's own, or the addressed one for an introspector.
    pub fn admit(&self, caller: &impl Caller, addressed: &Tenant) -> Result<()> {
        let tenant_id = caller.counted_in(addressed);
        // Almost always the addressed tenant itself, already in hand: no second lookup.
        if tenant_id == addressed.id {
            return Ok(self.limits.check_caller(addressed, caller.name())?);
        }
        match self.directory.tenant_by_id(tenant_id) {
            Some(tenant) => Ok(self.limits.check_caller(&tenant, caller.name())?),
            None => Err(Error::UnknownTenant),
        }
    }

    /// The configuration the gateway was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn super_tenant(&self) -> &TenantDomain {
        &self.super_tenant
    }

    /// The store, for tests and tools: a write through it yields its result only
    /// through [`Gateway::settle`], so the caches still hear of it. The request path
    /// never uses it (`tests/architecture.rs`).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Closes the database's connections: the last step of a shutdown.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Where `/metrics` is served, once its listener is bound.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics_address.get().copied()
    }

    pub(crate) fn metrics_bound(&self, address: std::net::SocketAddr) {
        let _ = self.metrics_address.set(address);
    }

    /// Counts an answered request and its latency.
    pub fn record_request(
        &self,
        tenant: &str,
        endpoint: &'static str,
        status: u16,
        took: Duration,
    ) {
        self.metrics.request(tenant, endpoint, status, took);
    }

    /// Whether the caches may answer now (always, on a database no other instance
    /// shares).
    pub fn caches_trusted(&self) -> bool {
        self.freshness.trusted()
    }

    /// How many argon2 computations this gateway has run: what the verification cache
    /// saves is visible in it.
    pub fn argon2_runs(&self) -> u64 {
        self.credentials.argon2_runs()
    }

    /// Drops expired tokens from the cache and idle keys from the rate limiters.
    pub fn sweep_caches(&self) {
        self.tokens.sweep(now());
        self.limits.sweep();
    }

    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    pub fn body_limit(&self) -> usize {
        self.config.server.max_body_bytes
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.config.server.body_timeout_ms)
    }
}

/// Someone who authenticated, and whose requests count against a tenant's budget.
pub trait Caller {
    /// The name the rate limits and the request log know it by: a client id or
    /// `user@tenant`, never a secret.
    fn name(&self) -> &str;
    /// The tenant whose budget its requests spend, given the one addressed.
    fn counted_in(&self, addressed: &Tenant) -> TenantId;
}

/// Where a request came from: the client address that the audit log records and that
/// lockout, fair queueing and rate limits key on.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip: IpAddr,
}

impl Origin {
    pub fn new(ip: IpAddr) -> Self {
        Origin { ip }
    }

    /// The address as text, for the audit log; a log line formats `ip` itself.
    pub fn address(&self) -> String {
        self.ip.to_string()
    }
}

/// Seconds since the Unix epoch: the clock every token time and state change reads.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
