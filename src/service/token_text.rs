//! Token text: how tokens, codes, ids and secrets are made, and the SHA-256 digests
//! they are stored and cached under.

use crate::store::Digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest as _, Sha256};

/// SHA-256 of a token: the only form in which tokens are stored or cached.
pub fn digest(token: &str) -> Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// The digest of a presented token, or `None` when no token of ours could look like it:
/// such input is refused before any lookup or cache entry. Tokens and codes are
/// `random_string(32)`, 43 base64url characters; a JWT access token (RFC 9068) is
/// three base64url parts joined by dots.
pub fn presented_digest(token: &str) -> Option<Digest> {
    let base64url = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let opaque = || token.len() <= MAX_TOKEN_CHARS && base64url(token);
    let jwt = || {
        token.len() <= MAX_JWT_CHARS
            && token.split('.').count() == 3
            && token.split('.').all(base64url)
    };
    (opaque() || jwt()).then(|| digest(token))
}

/// Longest opaque token looked up; ours are 43 characters.
const MAX_TOKEN_CHARS: usize = 128;
/// Longest JWT access token looked up; ours are about 500 characters.
const MAX_JWT_CHARS: usize = 2048;

/// `bytes` random bytes, as base64url without padding. The thread's generator is a
/// CSPRNG seeded (and periodically reseeded) from the OS, without a system call per
/// token.
pub fn random_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new grant's id: 8 bytes of the time in microseconds, then 8 random bytes, as
/// base64url (22 characters). Ids made close in time share their first characters, so
/// one batch of issuances lands on a few pages of the grant index instead of a random
/// page each: fewer pages dirtied per commit, less written to SQLite's WAL.
pub fn grant_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&micros.to_be_bytes());
    rand::thread_rng().fill_bytes(&mut bytes[8..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = random_string(32);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, random_string(32));
        assert_eq!(presented_digest(&a), Some(digest(&a)));
        assert_eq!(presented_digest("not a token"), None);
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        assert_eq!(presented_digest(jwt), Some(digest(jwt)));
        for not_ours in [
            "a.b",
            "a..c",
            "a.b.c.d",
            ".a.b",
            "a.b.c d",
            &"a".repeat(129),
        ] {
            assert_eq!(presented_digest(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn grant_ids_grow_with_time_and_differ() {
        let first = grant_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = grant_id();
        assert_eq!(first.len(), 22);
        // base64url of big-endian bytes keeps the order only where the alphabet is
        // ordered; compare the decoded time prefix instead.
        let time = |id: &str| {
            let bytes = URL_SAFE_NO_PAD.decode(id).unwrap();
            u64::from_be_bytes(bytes[..8].try_into().unwrap())
        };
        assert!(time(&second) > time(&first));
        assert_ne!(grant_id(), grant_id());
    }
}
