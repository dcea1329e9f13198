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

/// `bytes` random bytes from the OS, as base64url without padding.
pub fn random_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
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
    }
}
