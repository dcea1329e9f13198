//! Who is calling: `USERNAME@TENANT` parsing and usernames (SPEC §4).

use super::tenant::TenantDomain;
use serde::{Deserialize, Serialize};

/// The longest `name` and `email` a user may have.
const MAX_NAME_CHARS: usize = 256;
const MAX_EMAIL_CHARS: usize = 254;

/// What a user's profile says beyond the username, for OpenID Connect's `name`,
/// `email` and `email_verified` claims. Every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether whoever set `email` knows it to be the user's.
    #[serde(default)]
    pub email_verified: bool,
}

/// A profile as it is shown (the admin API's user, ID tokens, userinfo): each part only
/// when it has a value, and `email_verified` only beside an `email`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShownProfile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl ShownProfile {
    /// The parts of `profile` that may be shown: the name when `name`, the address and
    /// whether it is verified when `email`.
    pub fn of(profile: &Profile, name: bool, email: bool) -> Self {
        let address = profile.email.as_ref().filter(|_| email);
        ShownProfile {
            name: profile.name.clone().filter(|_| name),
            email: address.cloned(),
            email_verified: address.map(|_| profile.email_verified),
        }
    }
}

/// A profile that cannot be stored: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidProfile {
    pub field: &'static str,
    pub message: &'static str,
}

impl Profile {
    /// A name of 1 to 256 characters without control characters; an address of the
    /// form `local@domain` without whitespace, up to 254 characters (RFC 5321's bound);
    /// `email_verified` only with an address.
    pub fn check(&self) -> Result<(), InvalidProfile> {
        let refuse = |field, message| Err(InvalidProfile { field, message });
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
                return refuse("name", "must be 1 to 256 characters");
            }
            if name.chars().any(char::is_control) {
                return refuse("name", "must not hold control characters");
            }
        }
        match &self.email {
            Some(email) if !is_email(email) => refuse(
                "email",
                "must be an address like user@example.com, at most 254 characters",
            ),
            None if self.email_verified => {
                refuse("email_verified", "needs an email to be verified")
            }
            Some(_) | None => Ok(()),
        }
    }
}

/// `local@domain`: one `@`, both sides non-empty, a dot inside the domain, nothing
/// that is whitespace, a control character or an angle bracket.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let clean = |part: &str| {
        !part.is_empty()
            && !part
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@'))
    };
    text.chars().count() <= MAX_EMAIL_CHARS
        && clean(local)
        && clean(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

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
    fn profiles_are_checked_field_by_field() {
        let ok = Profile {
            name: Some("Alice Liddell".into()),
            email: Some("alice@wonder.example".into()),
            email_verified: true,
        };
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(Profile::default().check(), Ok(()));
        let field = |p: Profile| p.check().unwrap_err().field;
        let with_email = |e: &str| Profile {
            email: Some(e.into()),
            ..Profile::default()
        };
        for bad in [
            "alice",
            "@x.example",
            "alice@",
            "alice@localhost",
            "a b@x.example",
            "alice@x.example.",
            "<a@x.example>",
            "a@b@x.example",
        ] {
            assert_eq!(field(with_email(bad)), "email", "{bad}");
        }
        assert_eq!(
            field(with_email(&format!("{}@x.example", "a".repeat(250)))),
            "email"
        );
        let named = |n: &str| Profile {
            name: Some(n.into()),
            ..Profile::default()
        };
        assert_eq!(field(named("  ")), "name");
        assert_eq!(field(named("a\u{7}b")), "name");
        assert_eq!(field(named(&"n".repeat(257))), "name");
        let unverifiable = Profile {
            email_verified: true,
            ..Profile::default()
        };
        assert_eq!(field(unverifiable), "email_verified");
    }

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
