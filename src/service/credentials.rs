//! Password and client-secret verification (SPEC §4).
//!
//! Argon2id is paid at most once per valid credential: a verified pair is remembered
//! as an HMAC over (tenant, kind, name, stored hash, secret) under a key that lives only
//! in this process. Because the stored hash is part of the key, a password change or a
//! secret rotation invalidates the memory at once; a deleted or locked principal is
//! refused before the cache is consulted. No plaintext is kept, a wrong secret is never
//! remembered, and an unknown principal is checked against a dummy hash so that it
//! costs what a known one does.

use super::hasher::{Hasher, Lane, Permit, Saturated};
use crate::domain::tenant::TenantId;
use dashmap::DashSet;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub use super::hasher::{hash_blocking, HashError};

/// Secrets longer than this are refused before any hashing (SPEC §4).
pub const MAX_SECRET_BYTES: usize = 1024;

/// Remembered verifications before the memory is cleared: 32 bytes each, so at most a
/// few MiB under churn.
const MAX_REMEMBERED: usize = 100_000;

/// Whose secret is being checked; part of every cache key.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    User {
        tenant_id: TenantId,
        username: &'a str,
    },
    Client {
        client_id: &'a str,
    },
}

#[allow(
    missing_debug_implementations,
    reason = "holds the key that marks verified secrets"
)]
pub struct Credentials {
    mac_key: [u8; 32],
    verified: DashSet<[u8; 32]>,
    hasher: Hasher,
    dummy_hash: String,
}

impl Credentials {
    /// One hashing worker (and permit) per core: argon2 is CPU-bound, so more would only
    /// queue inside the kernel instead of in the fair queue.
    pub fn new() -> Result<Self, HashError> {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self::with_workers(workers)
    }

    fn with_workers(workers: usize) -> Result<Self, HashError> {
        let mut mac_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut mac_key);
        let mut dummy = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut dummy);
        Ok(Credentials {
            mac_key,
            verified: DashSet::new(),
            hasher: Hasher::new(workers),
            dummy_hash: hash_blocking(&hex(&dummy))?,
        })
    }

    /// True when this exact (holder, stored hash, secret) was verified before: no
    /// argon2 and no permit needed.
    pub fn remembered(&self, holder: Holder<'_>, stored_hash: &str, secret: &SecretString) -> bool {
        let secret = secret.expose_secret().as_bytes();
        secret.len() <= MAX_SECRET_BYTES
            && self
                .verified
                .contains(&self.cache_key(holder, stored_hash, secret))
    }

    /// Waits, fairly per tenant and address, for the right to hash.
    pub async fn permit(&self, lane: Lane) -> Result<Permit, Saturated> {
        self.hasher.permit(lane).await
    }

    /// True when `secret` matches `stored_hash`, which is then remembered. `None` (no
    /// usable principal) costs one argon2 verification all the same and answers false.
    pub async fn verify(
        &self,
        permit: &Permit,
        holder: Holder<'_>,
        stored_hash: Option<&str>,
        secret: &SecretString,
    ) -> Result<bool, HashError> {
        let secret_bytes = secret.expose_secret().as_bytes();
        if secret_bytes.len() > MAX_SECRET_BYTES {
            return Ok(false);
        }
        let hash = stored_hash.unwrap_or(&self.dummy_hash);
        let matched = self.hasher.verify(permit, hash, secret).await?;
        let Some(stored_hash) = stored_hash.filter(|_| matched) else {
            return Ok(false);
        };
        if self.verified.len() >= MAX_REMEMBERED {
            self.verified.clear();
        }
        self.verified
            .insert(self.cache_key(holder, stored_hash, secret_bytes));
        Ok(true)
    }

    /// How many argon2 verifications have run.
    pub fn argon2_runs(&self) -> u64 {
        self.hasher.runs()
    }

    /// Hashes a new secret on a hashing worker.
    pub async fn hash(&self, permit: &Permit, secret: &SecretString) -> Result<String, HashError> {
        self.hasher.hash(permit, secret).await
    }

    #[allow(clippy::expect_used, reason = "HMAC-SHA256 takes a key of any length")]
    fn cache_key(&self, holder: Holder<'_>, stored_hash: &str, secret: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key)
            .expect("HMAC takes any key length");
        // Length-prefixed fields, so no two different tuples share a byte string.
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_be_bytes());
            mac.update(bytes);
        };
        match holder {
            Holder::User {
                tenant_id,
                username,
            } => {
                field(b"user");
                field(&tenant_id.get().to_be_bytes());
                field(username.as_bytes());
            }
            Holder::Client { client_id } => {
                field(b"client");
                field(client_id.as_bytes());
            }
        }
        field(stored_hash.as_bytes());
        field(secret);
        mac.finalize().into_bytes().into()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn lane() -> Lane {
        Lane {
            tenant_id: TenantId::new(1),
            address: std::net::IpAddr::from([127, 0, 0, 1]),
        }
    }

    async fn verify(c: &Credentials, holder: Holder<'_>, hash: Option<&str>, s: &str) -> bool {
        let permit = c.permit(lane()).await.unwrap();
        c.verify(&permit, holder, hash, &secret(s)).await.unwrap()
    }

    #[tokio::test]
    async fn a_right_secret_is_remembered_and_a_wrong_one_never() {
        let c = Credentials::new().unwrap();
        let hash = hash_blocking("right").unwrap();
        let holder = Holder::User {
            tenant_id: TenantId::new(1),
            username: "alice",
        };
        assert!(!verify(&c, holder, Some(&hash), "wrong").await);
        assert!(c.verified.is_empty());
        assert!(verify(&c, holder, Some(&hash), "right").await);
        assert_eq!(c.verified.len(), 1);
        assert!(verify(&c, holder, Some(&hash), "right").await);
        assert!(c.remembered(holder, &hash, &secret("right")));
        assert!(!c.remembered(holder, &hash, &secret("wrong")));
        assert!(!verify(&c, holder, Some(&hash), "wrong").await);
    }

    #[tokio::test]
    async fn a_changed_hash_forgets_the_old_secret() {
        let c = Credentials::new().unwrap();
        let old = hash_blocking("old-password").unwrap();
        let new = hash_blocking("new-password").unwrap();
        let holder = Holder::User {
            tenant_id: TenantId::new(1),
            username: "alice",
        };
        assert!(verify(&c, holder, Some(&old), "old-password").await);
        assert!(!verify(&c, holder, Some(&new), "old-password").await);
    }

    #[tokio::test]
    async fn the_same_name_in_another_tenant_is_another_key() {
        let c = Credentials::new().unwrap();
        let hash = hash_blocking("pw").unwrap();
        let a = c.cache_key(
            Holder::User {
                tenant_id: TenantId::new(1),
                username: "admin",
            },
            &hash,
            b"pw",
        );
        let b = c.cache_key(
            Holder::User {
                tenant_id: TenantId::new(2),
                username: "admin",
            },
            &hash,
            b"pw",
        );
        let client = c.cache_key(Holder::Client { client_id: "admin" }, &hash, b"pw");
        assert_ne!(a, b);
        assert_ne!(a, client);
    }

    #[tokio::test]
    async fn unknown_principals_and_oversized_secrets_fail() {
        let c = Credentials::new().unwrap();
        let holder = Holder::Client {
            client_id: "nobody",
        };
        assert!(!verify(&c, holder, None, "anything").await);
        let hash = hash_blocking("x").unwrap();
        let long = "x".repeat(MAX_SECRET_BYTES + 1);
        assert!(!verify(&c, holder, Some(&hash), &long).await);
    }
}
