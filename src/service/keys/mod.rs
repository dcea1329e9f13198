//! Each tenant's signing keys, for signed introspection answers (RFC 9701) and the
//! JWKS that verifies them. A tenant's key is made with the tenant, stored sealed
//! under the master key, and opened into memory at its first use here.
//!
//! Several instances: a rotation's [`Changes`] name the tenant, so every instance
//! forgets the tenant's keys and reads the new ones at its next signature. While an
//! instance cannot hear the others, it reads the keys afresh for every use.

pub mod es256;
pub mod master;

use super::freshness::Freshness;
use super::introspect::Introspection;
use super::{Error, Gateway, Result, StartupError};
use crate::config;
use crate::domain::tenant::{Tenant, TenantId};
use crate::store::{Committed, NewSigningKey, SigningKeyRow, Store};
use bytes::Bytes;
use dashmap::DashMap;
use es256::{PublicJwk, SigningKey};
use master::MasterKey;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The `typ` of a signed introspection answer (RFC 9701 §5).
pub const INTROSPECTION_JWT: &str = "token-introspection+jwt";

/// Most tenants whose opened keys are held; past it the cache is emptied and refills.
const MAX_CACHED_TENANTS: usize = 100_000;

/// A tenant's keys as this instance uses them.
#[allow(missing_debug_implementations, reason = "holds a private signing key")]
pub struct TenantKeys {
    pub signer: SigningKey,
    /// The JWK Set: the signing key, then the retired keys still published.
    pub jwks: Bytes,
    /// The public points of the keys in the set, by `kid`: what a token this tenant
    /// signed verifies with.
    published: Vec<(String, Vec<u8>)>,
    /// When the next retired key leaves the set; the entry is stale from then on.
    stale_at: i64,
}

#[allow(missing_debug_implementations, reason = "holds the master key")]
pub struct Keyring {
    master: MasterKey,
    /// How long a retired key stays published, in seconds.
    pub retire_after: i64,
    tenants: DashMap<TenantId, Arc<TenantKeys>>,
    /// Bumped by every `forget*`, so that keys read before a rotation are not cached
    /// after it.
    epoch: AtomicU64,
    freshness: Arc<Freshness>,
}

impl Keyring {
    /// `plaintext` sealed under the master key for `context`: what every instance can
    /// open and nobody else can make, such as a list's cursor.
    pub(crate) fn seal_with_master(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        self.master.seal(plaintext, context)
    }

    /// What [`Keyring::seal_with_master`] sealed for `context`; `None` for anything else.
    pub(crate) fn open_with_master(&self, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        self.master.open(sealed, context).ok()
    }

    /// Opens the master key and checks it against the database: a missing file is
    /// generated only while no key is sealed yet, and a key that does not open every
    /// tenant's signing key stops the start. Then gives every tenant without a signing
    /// key its first one.
    pub async fn open(
        settings: &config::Keys,
        store: &dyn Store,
        freshness: Arc<Freshness>,
    ) -> Result<(Self, Committed<()>), StartupError> {
        let path = &settings.master_key_file;
        let shown = path.display();
        let sealed = store.active_signing_keys().await?;
        let master = match MasterKey::read(path).map_err(|e| StartupError::Keys(e.to_string()))? {
            Some(master) => master,
            None if !sealed.is_empty() => {
                return Err(StartupError::Keys(format!(
                    "the master key file {shown} is missing, but the database holds {} signing \
                     keys sealed under a master key: restore the file (every instance needs the \
                     same one), or point keys.master_key_file at it",
                    sealed.len()
                )))
            }
            None => {
                let master =
                    MasterKey::generate(path).map_err(|e| StartupError::Keys(e.to_string()))?;
                tracing::info!(file = %shown, "generated the master key that seals signing keys; keep it, and give every instance the same file");
                master
            }
        };
        let keyring = Keyring {
            master,
            retire_after: i64::try_from(settings.retire_after_seconds).unwrap_or(i64::MAX),
            tenants: DashMap::new(),
            epoch: AtomicU64::new(0),
            freshness,
        };
        keyring.check_opens(&sealed, &shown)?;
        let keyed: HashSet<TenantId> = sealed.iter().map(|row| row.tenant_id).collect();
        let now = super::now();
        let mut first_keys = Vec::new();
        for tenant in store.tenants().await? {
            if !keyed.contains(&tenant.id) {
                first_keys.push((tenant.id, keyring.new_key(&tenant.domain, now)?));
            }
        }
        let write = if first_keys.is_empty() {
            Committed::default()
        } else {
            tracing::info!(tenants = first_keys.len(), "created signing keys");
            let write = store.add_signing_keys(&first_keys).await?;
            // Another instance starting at the same moment with another master key may
            // have keyed these tenants first; that must stop this start, not fail its
            // signatures later.
            keyring.check_opens(&store.active_signing_keys().await?, &shown)?;
            write
        };
        Ok((keyring, write))
    }

    /// Whether the master key opens every one of `rows`; `shown` names its file.
    /// Opening is the check: parsing every key too would cost a scalar multiplication
    /// per tenant at each start, and a bad key is still caught (and named) at its first
    /// use.
    fn check_opens(
        &self,
        rows: &[SigningKeyRow],
        shown: &impl std::fmt::Display,
    ) -> Result<(), StartupError> {
        for row in rows {
            let context = seal_context(&row.domain, &row.kid);
            self.master
                .open(&row.sealed_private_key, &context)
                .map_err(|_| {
                    StartupError::Keys(format!(
                        "the master key in {shown} does not open the signing key {} of tenant \
                         {}: it is not the key the database's signing keys were sealed with",
                        row.kid, row.domain
                    ))
                })?;
        }
        Ok(())
    }

    /// A new key for the tenant `domain`, sealed and ready to store.
    pub fn new_key(&self, domain: &str, now: i64) -> Result<NewSigningKey> {
        let internal = |e: es256::KeyError| Error::Internal(e.to_string());
        let (pkcs8, public_key) = es256::generate().map_err(internal)?;
        let kid = PublicJwk::of(&public_key).map_err(internal)?.kid;
        let sealed_private_key = self.master.seal(&pkcs8, &seal_context(domain, &kid));
        Ok(NewSigningKey {
            kid,
            public_key,
            sealed_private_key,
            created_at: now,
        })
    }

    /// The private key of `row`, opened and checked against the row's public half.
    fn unseal(&self, row: &SigningKeyRow) -> Result<SigningKey> {
        let pkcs8 = self
            .master
            .open(
                &row.sealed_private_key,
                &seal_context(&row.domain, &row.kid),
            )
            .map_err(|e| {
                Error::Internal(format!("signing key {} of {}: {e}", row.kid, row.domain))
            })?;
        let key = SigningKey::from_pkcs8(&pkcs8).map_err(|e| Error::Internal(e.to_string()))?;
        if key.kid != row.kid || key.public_point() != row.public_key.as_slice() {
            return Err(Error::Internal(format!(
                "signing key {} of {}: the private key does not match the stored public key",
                row.kid, row.domain
            )));
        }
        Ok(key)
    }

    /// The keys `rows` (newest first) make, as of `now`.
    fn assemble(&self, rows: &[SigningKeyRow], now: i64) -> Result<TenantKeys> {
        let signing = rows
            .iter()
            .find(|row| row.retired_at.is_none())
            .ok_or_else(|| Error::Internal("a tenant has no signing key".into()))?;
        let mut published = Vec::with_capacity(rows.len());
        published.push(signing);
        published.extend(rows.iter().filter(|row| row.retired_at.is_some()));
        let keys = published
            .iter()
            .map(|row| PublicJwk::of(&row.public_key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(e.to_string()))?;
        #[derive(Serialize)]
        struct JwkSet {
            keys: Vec<PublicJwk>,
        }
        let jwks =
            serde_json::to_vec(&JwkSet { keys }).map_err(|e| Error::Internal(e.to_string()))?;
        let stale_at = rows
            .iter()
            .filter_map(|row| row.retired_at)
            .map(|retired| retired.saturating_add(self.retire_after))
            .min()
            .unwrap_or(i64::MAX)
            .max(now);
        Ok(TenantKeys {
            signer: self.unseal(signing)?,
            jwks: Bytes::from(jwks),
            published: published
                .iter()
                .map(|row| (row.kid.clone(), row.public_key.clone()))
                .collect(),
            stale_at,
        })
    }

    fn cached(&self, tenant_id: TenantId, now: i64) -> Option<Arc<TenantKeys>> {
        if !self.freshness.trusted() {
            return None;
        }
        let keys = self.tenants.get(&tenant_id)?;
        (now < keys.stale_at).then(|| keys.clone())
    }

    fn remember(&self, tenant_id: TenantId, keys: &Arc<TenantKeys>, epoch_before_read: u64) {
        if self.epoch.load(Ordering::SeqCst) != epoch_before_read {
            return;
        }
        if self.tenants.len() >= MAX_CACHED_TENANTS {
            self.tenants.clear();
        }
        self.tenants.insert(tenant_id, keys.clone());
        if self.epoch.load(Ordering::SeqCst) != epoch_before_read {
            self.tenants.remove(&tenant_id);
        }
    }

    pub fn forget(&self, tenant_ids: &[TenantId]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for tenant_id in tenant_ids {
            self.tenants.remove(tenant_id);
        }
    }

    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.tenants.clear();
    }
}

/// What a sealed private key is bound to: its tenant and its public key, so that a
/// sealed key moved to another tenant's row, or beside another public key, does not
/// open.
fn seal_context(domain: &str, kid: &str) -> Vec<u8> {
    format!("portcullis signing key\0{domain}\0{kid}").into_bytes()
}

impl TenantKeys {
    /// The payload of a JWS this tenant signed with a key it still publishes; `None`
    /// for anything else.
    pub fn verified_payload(&self, jws: &str) -> Option<Vec<u8>> {
        es256::verified_payload(jws, |kid| {
            self.published
                .iter()
                .find(|(published, _)| published == kid)
                .map(|(_, point)| point.as_slice())
        })
    }
}

/// The claims of a signed introspection answer (RFC 9701 §5).
#[derive(Serialize)]
struct SignedIntrospection<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    token_introspection: &'a Introspection<'a>,
}

impl Gateway {
    /// The tenant's keys: cached, or read and opened (and, for a tenant an older
    /// instance created without one, its first key made).
    pub async fn tenant_keys(&self, tenant: &Tenant) -> Result<Arc<TenantKeys>> {
        let now = super::now();
        let cached = self.keys.cached(tenant.id, now);
        self.metrics
            .cache_lookup(super::metrics::Cache::SigningKeys, cached.is_some());
        if let Some(keys) = cached {
            return Ok(keys);
        }
        let epoch = self.keys.epoch.load(Ordering::SeqCst);
        let retired_after = now.saturating_sub(self.keys.retire_after);
        let mut rows = self.store.signing_keys(tenant.id, retired_after).await?;
        if !rows.iter().any(|row| row.retired_at.is_none()) {
            let first = self.keys.new_key(tenant.domain.as_str(), now)?;
            let write = self.store.add_signing_keys(&[(tenant.id, first)]).await?;
            self.settle(write).await?;
            rows = self.store.signing_keys(tenant.id, retired_after).await?;
        }
        let keys = Arc::new(self.keys.assemble(&rows, now)?);
        self.keys.remember(tenant.id, &keys, epoch);
        Ok(keys)
    }

    /// `answer` as a compact JWS for `audience` (RFC 9701), signed with the tenant's
    /// key. Any failure is an error, never an unsigned or an inactive answer.
    pub async fn sign_introspection(
        &self,
        tenant: &Tenant,
        audience: &str,
        answer: &Introspection<'_>,
    ) -> Result<String> {
        let keys = self.tenant_keys(tenant).await?;
        let claims = SignedIntrospection {
            iss: &tenant.issuer,
            aud: audience,
            iat: super::now(),
            token_introspection: answer,
        };
        keys.signer
            .sign(INTROSPECTION_JWT, &claims)
            .map_err(|e| Error::Internal(format!("signing an introspection answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(dir: &std::path::Path, shared: bool) -> Keyring {
        Keyring {
            master: MasterKey::generate(&dir.join("master.key")).unwrap(),
            retire_after: 100,
            tenants: DashMap::new(),
            epoch: AtomicU64::new(0),
            freshness: Arc::new(Freshness::new(shared)),
        }
    }

    fn row(keyring: &Keyring, created_at: i64, retired_at: Option<i64>) -> SigningKeyRow {
        let key = keyring.new_key("foo.com", created_at).unwrap();
        SigningKeyRow {
            tenant_id: TenantId::new(7),
            domain: "foo.com".into(),
            kid: key.kid,
            public_key: key.public_key,
            sealed_private_key: key.sealed_private_key,
            created_at,
            retired_at,
        }
    }

    #[test]
    fn keys_are_cached_until_forgotten_or_a_retired_key_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring(dir.path(), false);
        let rows = [row(&keyring, 50, None), row(&keyring, 10, Some(50))];
        let keys = Arc::new(keyring.assemble(&rows, 60).unwrap());
        assert_eq!(keys.signer.kid, rows[0].kid);
        let set: serde_json::Value = serde_json::from_slice(&keys.jwks).unwrap();
        let kids: Vec<&str> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [rows[0].kid.as_str(), rows[1].kid.as_str()]);

        keyring.remember(TenantId::new(7), &keys, 0);
        assert!(keyring.cached(TenantId::new(7), 60).is_some());
        // The retired key leaves the set at 50 + 100: the entry is stale from then.
        assert!(keyring.cached(TenantId::new(7), 150).is_none());
        keyring.forget(&[TenantId::new(7)]);
        assert!(keyring.cached(TenantId::new(7), 60).is_none());
        // A read begun before a forget is not cached after it.
        keyring.remember(TenantId::new(7), &keys, 0);
        assert!(keyring.cached(TenantId::new(7), 60).is_none());
    }

    #[test]
    fn an_instance_that_cannot_hear_the_others_reads_keys_afresh() {
        let dir = tempfile::tempdir().unwrap();
        // Shared, and no heartbeat heard yet: not trusted.
        let keyring = keyring(dir.path(), true);
        let keys = Arc::new(keyring.assemble(&[row(&keyring, 1, None)], 1).unwrap());
        keyring.remember(TenantId::new(7), &keys, 0);
        assert!(keyring.tenants.contains_key(&TenantId::new(7)));
        assert!(keyring.cached(TenantId::new(7), 1).is_none());
    }

    #[test]
    fn a_key_sealed_for_another_tenant_or_beside_another_public_key_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring(dir.path(), false);
        let mut moved = row(&keyring, 1, None);
        moved.domain = "bar.com".into();
        assert!(keyring.unseal(&moved).is_err());
        let mut swapped = row(&keyring, 1, None);
        let other = row(&keyring, 1, None);
        swapped.public_key = other.public_key;
        swapped.kid = other.kid;
        assert!(keyring.unseal(&swapped).is_err());
        assert!(
            keyring.assemble(&[row(&keyring, 1, Some(1))], 1).is_err(),
            "no signing key"
        );
    }
}
