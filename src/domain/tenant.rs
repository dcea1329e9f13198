//! Tenant domains and the per-tenant settings the gateway acts on (SPEC §3).

use super::ownership::ManagedBy;
use super::permission::ResourceRule;
use std::fmt;

/// A validated tenant domain: lowercase letters, digits, `-` and `.`, at most 253 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantDomain(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant domain is 1 to 253 lowercase letters, digits, '-' and '.', not starting or ending with '.' or '-': {0:?}")]
pub struct InvalidDomain(pub String);

impl TenantDomain {
    pub fn parse(s: &str) -> Result<Self, InvalidDomain> {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !s.starts_with(['.', '-'])
            && !s.ends_with(['.', '-'])
            && !s.contains("..");
        if ok {
            Ok(TenantDomain(s.to_owned()))
        } else {
            Err(InvalidDomain(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Token lifetimes in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub access_token: i64,
    pub refresh_token: i64,
    pub authorization_code: i64,
    /// A refresh chain ends this long after its grant's first token, whatever the
    /// rotations (RFC 9700 §4.14.2).
    pub grant_max_lifetime: i64,
}

/// A tenant's own rate limits (requests per second); `None` follows the configuration,
/// 0 turns the limit off for this tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantRateLimits {
    pub requests_per_caller: Option<u32>,
    pub requests_per_tenant: Option<u32>,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token: 3600,
            refresh_token: 86400,
            authorization_code: 300,
            grant_max_lifetime: 2_592_000,
        }
    }
}

/// What a tenant sets for itself: a tenant file's `[tokens]`, `[introspection]` and
/// `[rate_limits]`, or the same through the settings API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSettings {
    pub lifetimes: Lifetimes,
    /// Clients that may introspect any token of the tenant.
    pub introspection_clients: Vec<String>,
    pub rate_limits: TenantRateLimits,
}

/// A tenant's id in the store. Its own type, so that it is never taken for another
/// number (a row id, a time, a count) or swapped with one; it prints and travels as
/// the number.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(i64);

impl TenantId {
    pub const fn new(id: i64) -> Self {
        TenantId(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl From<i64> for TenantId {
    fn from(id: i64) -> Self {
        TenantId(id)
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Everything a request needs to know about its tenant, loaded once and cached.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub domain: TenantDomain,
    pub is_super: bool,
    pub settings: TenantSettings,
    /// Who may change `settings`: the tenant's file, when it has one, or the API.
    pub settings_managed_by: ManagedBy,
    /// The tenant's resource rules; the defaults unless replaced.
    pub rules: std::sync::Arc<[ResourceRule]>,
    /// Who may change `rules`: the file only when it declares `[[resources]]`.
    pub rules_managed_by: ManagedBy,
    /// `{public_url}` or `{public_url}/t/{domain}`: the `iss` of every token.
    pub issuer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_domains_parse() {
        for ok in ["carbon.super", "foo.com", "a", "x-1.example.org"] {
            assert_eq!(TenantDomain::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn invalid_domains_are_refused() {
        let long = "a".repeat(254);
        for bad in [
            "",
            "Foo.com",
            "foo_com",
            ".foo",
            "foo.",
            "-foo",
            "foo..com",
            "foo/com",
            long.as_str(),
        ] {
            assert!(TenantDomain::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TenantDomain::parse(&"a".repeat(253)).is_ok());
    }
}
