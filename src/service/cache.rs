//! In-process caches: tenants, users, clients and active tokens.
//!
//! Each instance keeps only caches; the database is the truth. Every store write that
//! commits returns its [`crate::store::Changes`] inside a `Committed`, and the gateway's
//! `Caches::apply` turns them into the `forget_*` calls here: the one path, so a change
//! can as well arrive from another instance.

use super::freshness::Freshness;
use super::live_token::LiveToken;
use super::metrics::{Cache, Metrics};
use super::Result;
use crate::domain::client::is_client_id;
use crate::domain::permission::{default_rules, with_guards, ResourceRule};
use crate::domain::principal::validate_username;
use crate::domain::tenant::{
    Lifetimes, Tenant, TenantDomain, TenantId, TenantRateLimits, TenantSettings,
};
use crate::store::{ClientRecord, Digest, Store, TenantRow, UserRecord};
use dashmap::{DashMap, DashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

// Every cache is bounded in entries, and every key and value in bytes: ids and names
// are validated (at most 128 characters) before they are looked up, so no entry can be
// made from an identifier that no stored one could equal.

/// Most clients (known or remembered as absent) and users held in memory; past it the
/// cache is emptied and refills from the database.
const MAX_CACHED_CLIENTS: usize = 100_000;
const MAX_CACHED_USERS: usize = 100_000;

/// Most client ids remembered as absent.
const MAX_REMEMBERED_ABSENT_CLIENTS: usize = 10_000;

/// Most tokens held in memory, and most bytes they may take; past either, lookups go to
/// the database.
const MAX_CACHED_TOKENS: usize = 1_000_000;
const MAX_CACHED_TOKEN_BYTES: usize = 512 * 1024 * 1024;

#[allow(
    missing_debug_implementations,
    reason = "caches password and secret hashes"
)]
pub struct Directory {
    public_url: String,
    super_tenant: TenantDomain,
    /// Active tenants by domain (for paths) and by id (for clients and tokens).
    tenants: DashMap<String, Arc<Tenant>>,
    tenants_by_id: DashMap<TenantId, Arc<Tenant>>,
    users: DashMap<(TenantId, String), Arc<UserRecord>>,
    clients: DashMap<String, Arc<ClientRecord>>,
    /// Ids known not to be clients, because a Basic name is tried as a client id
    /// before it is tried as a user.
    absent_clients: DashSet<String>,
    /// Bumped by every `forget_*`, so that a read racing an invalidation is not cached.
    epoch: AtomicU64,
    /// While it says no, users and clients are read from the database, and an absent
    /// client id is asked for again.
    freshness: Arc<Freshness>,
    metrics: Arc<Metrics>,
}

impl Directory {
    pub fn new(
        public_url: String,
        super_tenant: TenantDomain,
        freshness: Arc<Freshness>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Directory {
            freshness,
            metrics,
            public_url,
            super_tenant,
            tenants: DashMap::new(),
            tenants_by_id: DashMap::new(),
            users: DashMap::new(),
            clients: DashMap::new(),
            absent_clients: DashSet::new(),
            epoch: AtomicU64::new(0),
        }
    }

    /// Brings the tenant tables in line with the database's active tenants. Entries are
    /// replaced in place and stale ones removed afterwards, so a concurrent request
    /// never finds an active tenant missing.
    pub async fn reload_tenants(&self, store: &dyn Store) -> Result<()> {
        let rows = store.tenants().await?;
        let mut active = std::collections::HashSet::with_capacity(rows.len());
        for row in rows.into_iter().filter(|r| r.active) {
            let tenant = Arc::new(self.tenant_from_row(row)?);
            self.tenants
                .insert(tenant.domain.as_str().to_owned(), tenant.clone());
            self.tenants_by_id.insert(tenant.id, tenant.clone());
            active.insert(tenant.id);
        }
        self.tenants.retain(|_, t| active.contains(&t.id));
        self.tenants_by_id.retain(|id, _| active.contains(id));
        Ok(())
    }

    fn tenant_from_row(&self, row: TenantRow) -> Result<Tenant> {
        let corrupt = super::Error::Internal;
        let domain = TenantDomain::parse(&row.domain).map_err(|e| corrupt(e.to_string()))?;
        let is_super = domain == self.super_tenant;
        let limit = |stored: Option<i64>| {
            stored
                .map(u32::try_from)
                .transpose()
                .map_err(|e| corrupt(e.to_string()))
        };
        let rules = match &row.resources {
            None => default_rules(is_super),
            Some(rules) => with_guards(
                rules
                    .iter()
                    .map(|r| {
                        ResourceRule::new(&r.context, r.secured, &r.http_method, &r.permissions)
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| corrupt(e.to_string()))?,
            ),
        };
        let issuer = if is_super {
            self.public_url.clone()
        } else {
            format!("{}/t/{}", self.public_url, domain)
        };
        Ok(Tenant {
            id: row.id,
            domain,
            is_super,
            settings: TenantSettings {
                lifetimes: Lifetimes {
                    access_token: row.access_token_ttl,
                    refresh_token: row.refresh_token_ttl,
                    authorization_code: row.authorization_code_ttl,
                    grant_max_lifetime: row.grant_max_lifetime,
                },
                introspection_clients: row.introspection_clients,
                rate_limits: TenantRateLimits {
                    requests_per_caller: limit(row.requests_per_caller)?,
                    requests_per_tenant: limit(row.requests_per_tenant)?,
                },
            },
            settings_managed_by: row.source.managed_by(),
            rules,
            rules_managed_by: row.resources_source.managed_by(),
            issuer,
        })
    }

    /// An active tenant by domain.
    pub fn tenant(&self, domain: &str) -> Option<Arc<Tenant>> {
        self.tenants.get(domain).map(|t| t.clone())
    }

    pub fn tenant_by_id(&self, id: TenantId) -> Option<Arc<Tenant>> {
        self.tenants_by_id.get(&id).map(|t| t.clone())
    }

    pub fn super_tenant(&self) -> Option<Arc<Tenant>> {
        self.tenant(self.super_tenant.as_str())
    }

    pub fn is_tenant(&self, domain: &str) -> bool {
        self.tenants.contains_key(domain)
    }

    pub async fn user(
        &self,
        store: &dyn Store,
        tenant_id: TenantId,
        username: &str,
    ) -> Result<Option<Arc<UserRecord>>> {
        if validate_username(username).is_err() {
            return Ok(None);
        }
        let key = (tenant_id, username.to_owned());
        let cached = self.users.get(&key).filter(|_| self.freshness.trusted());
        self.metrics.cache_lookup(Cache::User, cached.is_some());
        if let Some(user) = cached {
            return Ok(Some(user.clone()));
        }
        let epoch = self.epoch();
        let Some(user) = store.user(tenant_id, username).await? else {
            return Ok(None);
        };
        let user = Arc::new(user);
        self.remember_user(&user, epoch);
        Ok(Some(user))
    }

    pub async fn client(
        &self,
        store: &dyn Store,
        client_id: &str,
    ) -> Result<Option<Arc<ClientRecord>>> {
        if !is_client_id(client_id) {
            return Ok(None);
        }
        let trusted = self.freshness.trusted();
        let known = self.clients.get(client_id).filter(|_| trusted);
        let absent = known.is_none() && trusted && self.absent_clients.contains(client_id);
        self.metrics
            .cache_lookup(Cache::Client, known.is_some() || absent);
        if let Some(known) = known {
            return Ok(Some(known.clone()));
        }
        if absent {
            return Ok(None);
        }
        let epoch = self.epoch();
        let Some(client) = store.client(client_id).await? else {
            if self.absent_clients.len() < MAX_REMEMBERED_ABSENT_CLIENTS {
                self.absent_clients.insert(client_id.to_owned());
            }
            return Ok(None);
        };
        let client = Arc::new(client);
        self.remember_client(&client, epoch);
        Ok(Some(client))
    }

    /// Read before reading a principal from the database; pass to `remember_*`.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches a user read from the database, unless a principal was forgotten since
    /// `epoch_before_read`: a concurrent failure's lock must not be hidden by a record
    /// read before it (the same race [`TokenCache`] closes).
    pub fn remember_user(&self, user: &Arc<UserRecord>, epoch_before_read: u64) {
        if self.epoch() != epoch_before_read {
            return;
        }
        if self.users.len() >= MAX_CACHED_USERS {
            self.users.clear();
        }
        let key = (user.tenant_id, user.username.clone());
        self.users.insert(key.clone(), user.clone());
        if self.epoch() != epoch_before_read {
            self.users.remove(&key);
        }
    }

    /// Caches a client read from the database, as [`Directory::remember_user`] does.
    pub fn remember_client(&self, client: &Arc<ClientRecord>, epoch_before_read: u64) {
        if self.epoch() != epoch_before_read {
            return;
        }
        if self.clients.len() >= MAX_CACHED_CLIENTS {
            self.clients.clear();
        }
        self.absent_clients.remove(&client.client_id);
        self.clients
            .insert(client.client_id.clone(), client.clone());
        if self.epoch() != epoch_before_read {
            self.clients.remove(&client.client_id);
        }
    }

    pub fn forget_user(&self, tenant_id: TenantId, username: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.users.remove(&(tenant_id, username.to_owned()));
    }

    /// After a role changes, any cached user of the tenant may hold stale permissions.
    pub fn forget_users_of(&self, tenant_id: TenantId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.users.retain(|(tenant, _), _| *tenant != tenant_id);
    }

    pub fn forget_client(&self, client_id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.clients.remove(client_id);
        self.absent_clients.remove(client_id);
    }

    /// Forgets every user and client of a tenant, and every id remembered as absent
    /// (those belong to no tenant).
    pub fn forget_tenant(&self, tenant_id: TenantId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.users.retain(|(tenant, _), _| *tenant != tenant_id);
        self.clients.retain(|_, c| c.tenant_id != tenant_id);
        self.absent_clients.clear();
    }

    /// Forgets every user and client.
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.users.clear();
        self.clients.clear();
        self.absent_clients.clear();
    }
}

/// Tokens last seen ACTIVE, by digest.
///
/// A reader that fills the cache from the database could race a writer that revokes the
/// same token: the reader read ACTIVE before the commit and inserts after the writer's
/// removal. The epoch closes that window: writers bump it before removing, and a reader
/// that sees it moved while it was reading takes its insertion back.
#[derive(Debug)]
pub struct TokenCache {
    entries: DashMap<Digest, Arc<LiveToken>>,
    epoch: AtomicU64,
    /// What the entries take, approximately: bounds the cache in bytes as well.
    bytes: AtomicUsize,
    /// While it says no, every lookup is a miss.
    freshness: Arc<Freshness>,
    metrics: Arc<Metrics>,
}

impl TokenCache {
    pub fn new(freshness: Arc<Freshness>, metrics: Arc<Metrics>) -> Self {
        TokenCache {
            entries: DashMap::new(),
            epoch: AtomicU64::new(0),
            bytes: AtomicUsize::new(0),
            freshness,
            metrics,
        }
    }

    pub fn get(&self, digest: &Digest) -> Option<Arc<LiveToken>> {
        let found = self
            .freshness
            .trusted()
            .then(|| self.entries.get(digest).map(|t| t.clone()))
            .flatten();
        self.metrics.cache_lookup(Cache::Token, found.is_some());
        found
    }

    /// Read before going to the database; pass to [`TokenCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn insert(&self, digest: Digest, record: Arc<LiveToken>, epoch_before_read: u64) {
        let size = record.footprint();
        if self.entries.len() >= MAX_CACHED_TOKENS
            || self.bytes.load(Ordering::Relaxed) + size > MAX_CACHED_TOKEN_BYTES
        {
            return;
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        if let Some(replaced) = self.entries.insert(digest, record) {
            self.bytes
                .fetch_sub(replaced.footprint(), Ordering::Relaxed);
        }
        if self.epoch() != epoch_before_read {
            self.remove(&digest);
        }
    }

    fn remove(&self, digest: &Digest) {
        if let Some((_, removed)) = self.entries.remove(digest) {
            self.bytes.fetch_sub(removed.footprint(), Ordering::Relaxed);
        }
    }

    /// Called after a committed state change of these tokens.
    pub fn forget(&self, digests: &[Digest]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for d in digests {
            self.remove(d);
        }
    }

    /// Forgets every token of a tenant (`None`: of every tenant).
    pub fn forget_tenant(&self, tenant_id: Option<TenantId>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.retain(|t| tenant_id.is_some_and(|id| t.tenant_id != id));
    }

    /// Keeps the entries `keep` says yes to, and the byte count with them.
    fn retain(&self, keep: impl Fn(&LiveToken) -> bool) {
        self.entries.retain(|_, t| {
            let kept = keep(t);
            if !kept {
                self.bytes.fetch_sub(t.footprint(), Ordering::Relaxed);
            }
            kept
        });
    }

    /// Drops entries past their lifetime, so that tokens nobody asks about again do
    /// not fill the cache up to its bound.
    pub fn sweep(&self, now: i64) {
        self.retain(|t| t.expires_at > now);
    }

    /// Approximate bytes held by the entries.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{State, TokenKind};
    use crate::store::NewToken;

    fn record(seed: u8, expires_at: i64) -> Arc<LiveToken> {
        let record = crate::store::TokenRecord {
            id: seed.into(),
            token: NewToken {
                tenant_id: TenantId::new(1),
                kind: TokenKind::Access,
                digest: [seed; 32],
                jti: String::new(),
                grant_id: String::new(),
                grant_started_at: 0,
                refresh_digest: None,
                client_id: String::new(),
                username: None,
                scope: String::new(),
                issued_at: 0,
                not_before: 0,
                expires_at,
                redirect_uri: None,
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
        };
        Arc::new(LiveToken::of(&record))
    }

    #[test]
    fn a_sweep_drops_only_expired_tokens() {
        let cache = TokenCache::new(Arc::new(Freshness::new(false)), Arc::default());
        cache.insert([1; 32], record(1, 100), cache.epoch());
        cache.insert([2; 32], record(2, 300), cache.epoch());
        let two = cache.bytes();
        cache.sweep(200);
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[2; 32]).is_some());
        assert_eq!(cache.bytes(), two / 2, "the byte count follows the entries");
        cache.forget(&[[2; 32]]);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn an_insert_racing_an_invalidation_is_taken_back() {
        let cache = TokenCache::new(Arc::new(Freshness::new(false)), Arc::default());
        let before_read = cache.epoch();
        // A revocation commits and invalidates while the reader was at the database.
        cache.forget(&[[3; 32]]);
        cache.insert([3; 32], record(3, 300), before_read);
        assert!(
            cache.get(&[3; 32]).is_none(),
            "a stale ACTIVE read must not stay cached"
        );
        cache.insert([3; 32], record(3, 300), cache.epoch());
        assert!(cache.get(&[3; 32]).is_some());
    }
}
