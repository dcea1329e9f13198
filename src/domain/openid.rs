//! OpenID Connect's pure rules: which scopes ask for an identity and which claims each
//! one releases, the claims of an ID token, and `at_hash` (OpenID Connect Core 1.0).

use super::principal::{Profile, ShownProfile};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The scope that makes a request an OpenID Connect request.
pub const OPENID: &str = "openid";
/// The scope that releases `preferred_username` and `name`.
pub const PROFILE: &str = "profile";
/// The scope that releases `email` and `email_verified`.
pub const EMAIL: &str = "email";
/// The scopes the discovery document offers.
pub const SCOPES: [&str; 3] = [OPENID, PROFILE, EMAIL];
/// Every claim an ID token or the userinfo answer may carry.
pub const CLAIMS: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "sid",
    "preferred_username",
    "name",
    "email",
    "email_verified",
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
    #[serde(flatten)]
    pub profile: ShownProfile,
}

/// Who a user is, as far as the user's records go.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    pub subject: &'a str,
    pub username: &'a str,
    pub profile: &'a Profile,
}

impl Identity {
    /// The subject always; the username and the name with `profile`; the address and
    /// whether it is verified with `email`, when the user has one. A claim the user has
    /// no value for is left out, never sent empty.
    pub fn released(person: Person<'_>, scope: &str) -> Self {
        let profile = has_scope(scope, PROFILE);
        Identity {
            sub: person.subject.to_owned(),
            preferred_username: profile.then(|| person.username.to_owned()),
            profile: ShownProfile::of(person.profile, profile, has_scope(scope, EMAIL)),
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
    /// The sign-in session (Front-Channel Logout 1.0 §3), which a logout's
    /// `id_token_hint` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
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
    fn each_scope_releases_its_claims_and_no_more() {
        let profile = Profile {
            name: Some("Alice Liddell".into()),
            email: Some("alice@wonder.example".into()),
            email_verified: true,
        };
        let alice = Person {
            subject: "s1",
            username: "alice",
            profile: &profile,
        };
        let json = |scope| serde_json::to_value(Identity::released(alice, scope)).unwrap();
        assert_eq!(json("openid"), serde_json::json!({"sub": "s1"}));
        assert_eq!(
            json("openid profile"),
            serde_json::json!({"sub": "s1", "preferred_username": "alice", "name": "Alice Liddell"})
        );
        assert_eq!(
            json("openid email"),
            serde_json::json!({"sub": "s1", "email": "alice@wonder.example", "email_verified": true})
        );
        let nobody = Profile::default();
        let bare = Person {
            profile: &nobody,
            ..alice
        };
        let released = Identity::released(bare, "openid profile email");
        assert_eq!(
            serde_json::to_value(released).unwrap(),
            serde_json::json!({"sub": "s1", "preferred_username": "alice"}),
            "a claim without a value is left out"
        );
    }
}
