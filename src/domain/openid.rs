//! OpenID Connect's pure rules: which scopes ask for an identity and which claims each
//! one releases, the claims of an ID token, and `at_hash` (OpenID Connect Core 1.0).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The scope that makes a request an OpenID Connect request.
pub const OPENID: &str = "openid";
/// The scope that releases `preferred_username`.
pub const PROFILE: &str = "profile";
/// The scopes the discovery document offers.
pub const SCOPES: [&str; 2] = [OPENID, PROFILE];
/// Every claim an ID token or the userinfo answer may carry.
pub const CLAIMS: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "preferred_username",
];
/// The longest `nonce` an authorization request may carry: it is stored with the code
/// and copied into the ID token.
pub const MAX_NONCE_CHARS: usize = 512;

/// Whether a granted scope (space-separated) holds `wanted`.
pub fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// `at_hash`: the left half of the SHA-256 of the access token's ASCII, base64url
/// (Core §3.1.3.6, for ES256).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Who the user is, as the granted scope lets a client learn it: the userinfo answer,
/// and the identity part of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

impl Identity {
    /// `subject` always; the username only when `scope` holds `profile`.
    pub fn released(subject: &str, username: &str, scope: &str) -> Self {
        Identity {
            sub: subject.to_owned(),
            preferred_username: has_scope(scope, PROFILE).then(|| username.to_owned()),
        }
    }
}

/// An ID token's claims (Core §2), signed by the tenant's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdTokenClaims {
    pub iss: String,
    /// The client: the one audience, and the authorized party.
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    #[serde(flatten)]
    pub identity: Identity,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_whole_words() {
        assert!(has_scope("openid profile", "openid"));
        assert!(has_scope("read openid", "openid"));
        assert!(!has_scope("openids profile", "openid"));
        assert!(!has_scope("", "openid"));
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // Worked out apart from this code (Python's hashlib and base64): the first 16
        // bytes of the SHA-256, base64url without padding.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNVu7fbHJT7GMQb0LgSs"),
            "kvmhVG5FcmnMAaElSCUZGg"
        );
    }

    #[test]
    fn the_username_is_released_with_profile_only() {
        let with = Identity::released("s1", "alice", "openid profile");
        assert_eq!(with.preferred_username.as_deref(), Some("alice"));
        let without = Identity::released("s1", "alice", "openid");
        assert_eq!(without.preferred_username, None);
        let json = serde_json::to_value(&without).unwrap();
        assert_eq!(json, serde_json::json!({"sub": "s1"}));
    }
}
