//! Password and client-secret verification (SPEC §4).
//!
//! Argon2id is paid at most once per valid credential: a verified pair is remembered
//! as an HMAC over (tenant, kind, name, stored hash, secret) under a key that lives only
//! in this process. Because the stored hash is part of the key, a password change or a
//! secret rotation invalidates the memory at once; a deleted or locked principal is
//! refused before the cache is consulted. No plaintext is kept, a wrong secret is never
//! remembered, and an unknown principal is checked against a dummy hash so that it
//! costs what a known one does.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use dashmap::DashSet;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Secrets longer than this are refused before any hashing (SPEC §4).
pub const MAX_SECRET_BYTES: usize = 1024;

/// Remembered verifications before the memory is cleared; bounds memory under churn.
const MAX_REMEMBERED: usize = 100_000;

/// Whose secret is being checked; part of every cache key.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    User { tenant_id: i64, username: &'a str },
    Client { client_id: &'a str },
}

pub struct Credentials {
    mac_key: [u8; 32],
    verified: DashSet<[u8; 32]>,
    /// Caps concurrent argon2 work so a flood of wrong passwords cannot starve the server.
    permits: Arc<Semaphore>,
    dummy_hash: String,
    /// argon2 verifications run so far: what the cache saves is visible here.
    runs: AtomicU64,
}

/// Argon2 failed in a way that is not "wrong secret" (a malformed stored hash, a
/// panicked worker).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Credentials {
    pub fn new() -> Result<Self, HashError> {
        let mut mac_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut mac_key);
        let mut dummy = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut dummy);
        let dummy_hash = hash_blocking(&hex(&dummy))?;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(Credentials {
            mac_key,
            verified: DashSet::new(),
            permits: Arc::new(Semaphore::new(workers)),
            dummy_hash,
            runs: AtomicU64::new(0),
        })
    }

    /// True when `secret` matches `stored_hash`. `None` (no such principal, or a public
    /// client) costs one argon2 verification all the same and answers false.
    pub async fn verify(
        &self,
        holder: Holder<'_>,
        stored_hash: Option<&str>,
        secret: &SecretString,
    ) -> Result<bool, HashError> {
        let secret_bytes = secret.expose_secret().as_bytes();
        if secret_bytes.len() > MAX_SECRET_BYTES {
            return Ok(false);
        }
        let key = stored_hash.map(|hash| self.cache_key(holder, hash, secret_bytes));
        if let Some(key) = &key {
            if self.verified.contains(key) {
                return Ok(true);
            }
        }
        let hash = stored_hash.unwrap_or(&self.dummy_hash).to_owned();
        let candidate = secret.clone();
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let matched =
            tokio::task::spawn_blocking(move || verify_blocking(&hash, candidate.expose_secret()))
                .await
                .map_err(|e| HashError(e.to_string()))??;
        let ok = matched && stored_hash.is_some();
        if let (true, Some(key)) = (ok, key) {
            if self.verified.len() >= MAX_REMEMBERED {
                self.verified.clear();
            }
            self.verified.insert(key);
        }
        Ok(ok)
    }

    /// How many argon2 verifications have run.
    pub fn argon2_runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Hashes a new secret off the async workers.
    pub async fn hash(&self, secret: &SecretString) -> Result<String, HashError> {
        let secret = secret.clone();
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(move || hash_blocking(secret.expose_secret()))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

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
                field(&tenant_id.to_be_bytes());
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

/// argon2id with the crate's recommended parameters, for the CLI and start-up.
pub fn hash_blocking(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

fn verify_blocking(stored_hash: &str, secret: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(stored_hash).map_err(|e| HashError(e.to_string()))?;
    // The parameters come from the stored PHC string; `verify_password` compares in
    // constant time.
    Ok(Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn a_right_secret_is_remembered_and_a_wrong_one_never() {
        let c = Credentials::new().unwrap();
        let hash = hash_blocking("right").unwrap();
        let holder = Holder::User {
            tenant_id: 1,
            username: "alice",
        };
        assert!(!c
            .verify(holder, Some(&hash), &secret("wrong"))
            .await
            .unwrap());
        assert!(c.verified.is_empty());
        assert!(c
            .verify(holder, Some(&hash), &secret("right"))
            .await
            .unwrap());
        assert_eq!(c.verified.len(), 1);
        assert!(c
            .verify(holder, Some(&hash), &secret("right"))
            .await
            .unwrap());
        assert!(!c
            .verify(holder, Some(&hash), &secret("wrong"))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_changed_hash_forgets_the_old_secret() {
        let c = Credentials::new().unwrap();
        let old = hash_blocking("old-password").unwrap();
        let new = hash_blocking("new-password").unwrap();
        let holder = Holder::User {
            tenant_id: 1,
            username: "alice",
        };
        assert!(c
            .verify(holder, Some(&old), &secret("old-password"))
            .await
            .unwrap());
        assert!(!c
            .verify(holder, Some(&new), &secret("old-password"))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn the_same_name_in_another_tenant_is_another_key() {
        let c = Credentials::new().unwrap();
        let hash = hash_blocking("pw").unwrap();
        let a = c.cache_key(
            Holder::User {
                tenant_id: 1,
                username: "admin",
            },
            &hash,
            b"pw",
        );
        let b = c.cache_key(
            Holder::User {
                tenant_id: 2,
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
        assert!(!c.verify(holder, None, &secret("anything")).await.unwrap());
        let hash = hash_blocking("x").unwrap();
        assert!(!c
            .verify(
                holder,
                Some(&hash),
                &secret(&"x".repeat(MAX_SECRET_BYTES + 1))
            )
            .await
            .unwrap());
    }
}
