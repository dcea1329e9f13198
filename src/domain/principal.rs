//! Who is calling: `USERNAME@TENANT` parsing and usernames (SPEC §4).

use super::tenant::TenantDomain;

/// A user's name within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a username is 1 to 128 characters without '/', ':', whitespace or control characters: {0:?}"
)]
pub struct InvalidUsername(pub String);

/// Checks a username: no separators used by Basic auth or URLs, no control characters.
/// `@` is allowed (an e-mail address is a fine username); tenant splitting uses the
/// last `@` whose suffix is a known tenant.
pub fn validate_username(name: &str) -> Result<(), InvalidUsername> {
    let ok = !name.is_empty()
        && name.chars().count() <= 128
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == ':');
    if ok {
        Ok(())
    } else {
        Err(InvalidUsername(name.to_owned()))
    }
}

/// Splits a sign-in name into `(username, tenant)`: at the last `@` whose suffix
/// `is_tenant` accepts; otherwise the whole name belongs to the super tenant.
pub fn split_sign_in_name<'a>(
    name: &'a str,
    super_tenant: &TenantDomain,
    is_tenant: impl Fn(&str) -> bool,
) -> (&'a str, TenantDomain) {
    for (at, _) in name.rmatch_indices('@') {
        let (user, suffix) = (&name[..at], &name[at + 1..]);
        if !user.is_empty() && is_tenant(suffix) {
            if let Ok(domain) = TenantDomain::parse(suffix) {
                return (user, domain);
            }
        }
    }
    (name, super_tenant.clone())
}

/// The name introspection and admin answers use: `admin@carbon.super`, `admin@foo.com`.
pub fn qualified_name(username: &str, tenant: &TenantDomain) -> String {
    format!("{username}@{tenant}")
}

/// The sign-in name of a user of `tenant`, as that tenant's clients may send it:
/// `alice`, or `alice@foo.com` already qualified when the client is in foo.com.
pub fn sign_in_name_in(username: &str, tenant: &TenantDomain) -> String {
    match username.strip_suffix(tenant.as_str()) {
        Some(user) if user.ends_with('@') => username.to_owned(),
        _ => qualified_name(username, tenant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_qualified_once_for_its_clients_tenant() {
        let foo = TenantDomain::parse("foo.com").unwrap();
        assert_eq!(sign_in_name_in("alice", &foo), "alice@foo.com");
        assert_eq!(sign_in_name_in("alice@foo.com", &foo), "alice@foo.com");
        assert_eq!(
            sign_in_name_in("alice@bar.com", &foo),
            "alice@bar.com@foo.com"
        );
        assert_eq!(
            sign_in_name_in("alicefoo.com", &foo),
            "alicefoo.com@foo.com"
        );
    }

    fn super_tenant() -> TenantDomain {
        TenantDomain::parse("carbon.super").unwrap()
    }

    #[test]
    fn a_bare_name_belongs_to_the_super_tenant() {
        let (u, t) = split_sign_in_name("admin", &super_tenant(), |_| true);
        assert_eq!((u, t.as_str()), ("admin", "carbon.super"));
    }

    #[test]
    fn the_last_known_tenant_suffix_wins() {
        let known = |d: &str| d == "foo.com";
        let (u, t) = split_sign_in_name("alice@mail.org@foo.com", &super_tenant(), known);
        assert_eq!((u, t.as_str()), ("alice@mail.org", "foo.com"));
        // An e-mail style name with an unknown suffix is a super-tenant user.
        let (u, t) = split_sign_in_name("bob@mail.org", &super_tenant(), known);
        assert_eq!((u, t.as_str()), ("bob@mail.org", "carbon.super"));
    }

    #[test]
    fn an_empty_user_part_is_not_split() {
        let (u, t) = split_sign_in_name("@foo.com", &super_tenant(), |_| true);
        assert_eq!((u, t.as_str()), ("@foo.com", "carbon.super"));
    }

    #[test]
    fn usernames_are_validated() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("alice@mail.org").is_ok());
        for bad in ["", "a b", "a:b", "a/b", "a\u{7}"] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
        assert!(validate_username(&"x".repeat(129)).is_err());
    }

    // Fuzzing of untrusted input: arbitrary bytes never panic. PROPTEST_CASES raises
    // the number of cases for a longer run (README, "Abuse resistance").
    proptest::proptest! {
        #[test]
        fn any_sign_in_name_splits_into_its_parts(name in "[a-z@.:/ ]{0,40}") {
            let (user, tenant) = split_sign_in_name(&name, &super_tenant(), |d| d == "foo.com");
            proptest::prop_assert!(name.starts_with(user));
            proptest::prop_assert!(tenant.as_str() == "carbon.super" || tenant.as_str() == "foo.com");
            let _ = validate_username(user);
        }
    }
}
