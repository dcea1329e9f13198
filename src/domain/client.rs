//! What a client registration may say: ids, grant types, redirect URIs, scopes. Shared
//! by tenant files and the admin API so both refuse the same things.

use super::console::CONSOLE_CLIENT_ID;
use super::scope::is_scope_token;

/// The grants of RFC 6749 that a client may be given, by their `grant_type` names
/// (also how they are stored and shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    Password,
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::RefreshToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// A public client (one without a secret) authenticates by its PKCE verifier, so it
    /// may only use the code grant and refresh what that gave it.
    fn open_to_public_clients(self) -> bool {
        match self {
            GrantType::AuthorizationCode | GrantType::RefreshToken => true,
            GrantType::ClientCredentials | GrantType::Password => false,
        }
    }
}

/// A client registration that cannot be accepted; `field` is relative to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidClient {
    pub field: String,
    pub message: String,
}

/// Client ids use only RFC 3986 unreserved characters, so they survive Basic
/// percent-encoding untouched.
pub fn is_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether a redirect URI sent in a request matches a registered one: exactly, or, for
/// a loopback URI registered without a port, with any port (RFC 8252 §7.3, native apps
/// listen on an ephemeral port).
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    for host in ["http://127.0.0.1", "http://[::1]"] {
        let (Some(reg_rest), Some(req_rest)) =
            (registered.strip_prefix(host), requested.strip_prefix(host))
        else {
            continue;
        };
        if !reg_rest.starts_with('/') {
            return false;
        }
        let Some(after_port) = req_rest.strip_prefix(':') else {
            return false;
        };
        let digits = after_port.bytes().take_while(u8::is_ascii_digit).count();
        return (1..=5).contains(&digits) && &after_port[digits..] == reg_rest;
    }
    false
}

/// Checks a registration's id, grants, redirect URIs and scopes, and gives its grant
/// types parsed.
pub fn validate(
    client_id: &str,
    public: bool,
    grant_types: &[String],
    redirect_uris: &[String],
    scopes: &[String],
    require_pkce: bool,
) -> Result<Vec<GrantType>, InvalidClient> {
    let invalid = |field: String, message: String| Err(InvalidClient { field, message });
    if !is_client_id(client_id) {
        return invalid(
            "client_id".into(),
            "1 to 128 characters of A-Z a-z 0-9 - . _ ~".into(),
        );
    }
    if client_id == CONSOLE_CLIENT_ID {
        return invalid(
            "client_id".into(),
            format!("{CONSOLE_CLIENT_ID} is every tenant's console, and reserved"),
        );
    }
    let grants = parse_grant_types(grant_types, public)?;
    for (i, uri) in redirect_uris.iter().enumerate() {
        // RFC 6749 §3.1.2: absolute, no fragment.
        let absolute = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"))
            .is_some_and(|rest| !rest.is_empty());
        if !absolute || uri.contains('#') || uri.chars().any(char::is_whitespace) {
            return invalid(
                format!("redirect_uris[{i}]"),
                "an absolute http(s) URI without a fragment".into(),
            );
        }
    }
    if public && !require_pkce {
        // RFC 9700 §2.1.1: a public client has no other proof than its PKCE verifier.
        return invalid(
            "require_pkce".into(),
            "only a confidential client may be exempted from PKCE".into(),
        );
    }
    for (i, scope) in scopes.iter().enumerate() {
        if !is_scope_token(scope) {
            return invalid(format!("scopes[{i}]"), format!("invalid scope {scope:?}"));
        }
    }
    Ok(grants)
}

/// What a client's access tokens look like: random opaque text (the default), or a
/// JWT access token of RFC 9068 that a resource server can check by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    #[default]
    Opaque,
    Jwt,
}

impl AccessTokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessTokenFormat::Opaque => "opaque",
            AccessTokenFormat::Jwt => "jwt",
        }
    }

    /// The format named `name`, or why not (`field` is the registration's key).
    pub fn parse(name: &str) -> Result<Self, InvalidClient> {
        match name {
            "opaque" => Ok(AccessTokenFormat::Opaque),
            "jwt" => Ok(AccessTokenFormat::Jwt),
            _ => Err(InvalidClient {
                field: "access_token_format".into(),
                message: format!("{name:?} is not \"opaque\" or \"jwt\""),
            }),
        }
    }
}

/// How a stored format is read back.
impl TryFrom<String> for AccessTokenFormat {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::parse(&name).map_err(|e| e.message)
    }
}

/// Longest client name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A client's display name: 1 to 100 characters, none of them a control character.
pub fn check_name(name: &str) -> Result<(), InvalidClient> {
    let count = name.chars().count();
    if (1..=MAX_NAME_CHARS).contains(&count) && !name.chars().any(char::is_control) {
        return Ok(());
    }
    Err(InvalidClient {
        field: "name".into(),
        message: format!("1 to {MAX_NAME_CHARS} characters, no control characters"),
    })
}

/// A registration's grant types by name: at least one, each known, and for a public
/// client only those it may use.
pub fn parse_grant_types(names: &[String], public: bool) -> Result<Vec<GrantType>, InvalidClient> {
    let invalid = |field: String, message: String| Err(InvalidClient { field, message });
    if names.is_empty() {
        return invalid("grant_types".into(), "list at least one grant type".into());
    }
    let mut grants = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Some(grant) = GrantType::parse(name) else {
            let known = GrantType::ALL.map(GrantType::as_str);
            return invalid(
                format!("grant_types[{i}]"),
                format!("unknown grant type {name:?}; one of {known:?}"),
            );
        };
        if public && !grant.open_to_public_clients() {
            return invalid(
                format!("grant_types[{i}]"),
                "a public client (no secret) may only use [\"authorization_code\", \"refresh_token\"]".into(),
            );
        }
        grants.push(grant);
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_good_registration_passes() {
        assert!(validate(
            "app-1",
            false,
            &strings(&["client_credentials"]),
            &strings(&["https://a.example/cb"]),
            &strings(&["read"]),
            true
        )
        .is_ok());
        assert!(validate(
            "spa",
            true,
            &strings(&["authorization_code", "refresh_token"]),
            &[],
            &[],
            true
        )
        .is_ok());
    }

    #[test]
    fn only_a_confidential_client_may_skip_pkce() {
        let code = strings(&["authorization_code"]);
        assert!(validate("legacy", false, &code, &[], &[], false).is_ok());
        let e = validate("spa", true, &code, &[], &[], false).unwrap_err();
        assert_eq!(e.field, "require_pkce");
    }

    #[test]
    fn names_are_short_printable_text() {
        assert!(check_name("Billing dashboard").is_ok());
        assert!(check_name(&"é".repeat(100)).is_ok());
        assert_eq!(check_name("").unwrap_err().field, "name");
        assert!(check_name(&"a".repeat(101)).is_err());
        assert!(check_name("tab\there").is_err());
    }

    #[test]
    fn grant_types_come_back_parsed_and_keep_their_names() {
        let grants = validate(
            "app",
            false,
            &strings(&["refresh_token", "password"]),
            &[],
            &[],
            true,
        )
        .unwrap();
        assert_eq!(grants, [GrantType::RefreshToken, GrantType::Password]);
        let stored = serde_json::to_string(&grants).unwrap();
        assert_eq!(stored, r#"["refresh_token","password"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<GrantType>>(&stored).unwrap(),
            grants
        );
    }

    #[test]
    fn each_bad_part_is_named() {
        let field = |r: Result<Vec<GrantType>, InvalidClient>| r.unwrap_err().field;
        assert_eq!(
            field(validate(
                "a b",
                false,
                &strings(&["password"]),
                &[],
                &[],
                true
            )),
            "client_id"
        );
        assert_eq!(
            field(validate("a", false, &[], &[], &[], true)),
            "grant_types"
        );
        assert_eq!(
            field(validate(
                "a",
                false,
                &strings(&["password", "implicit"]),
                &[],
                &[],
                true
            )),
            "grant_types[1]"
        );
        assert_eq!(
            field(validate(
                "a",
                true,
                &strings(&["client_credentials"]),
                &[],
                &[],
                true
            )),
            "grant_types[0]"
        );
        assert_eq!(
            field(validate(
                "a",
                false,
                &strings(&["password"]),
                &strings(&["https://x/#f"]),
                &[],
                true
            )),
            "redirect_uris[0]"
        );
        assert_eq!(
            field(validate(
                "a",
                false,
                &strings(&["password"]),
                &strings(&["/relative"]),
                &[],
                true
            )),
            "redirect_uris[0]"
        );
        assert_eq!(
            field(validate(
                "a",
                false,
                &strings(&["password"]),
                &[],
                &strings(&["ok", "b\"ad"]),
                true
            )),
            "scopes[1]"
        );
    }

    #[test]
    fn loopback_redirect_uris_match_any_port() {
        assert!(redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example/cb/"
        ));
        assert!(!redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example:8443/cb"
        ));
        assert!(redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51004/callback"
        ));
        assert!(redirect_uri_matches(
            "http://[::1]/cb?x=1",
            "http://[::1]:8080/cb?x=1"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51004/other"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:/callback"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1.evil.com/callback"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1:9000/callback",
            "http://127.0.0.1:9001/callback"
        ));
        assert!(!redirect_uri_matches(
            "http://localhost/callback",
            "http://localhost:9001/callback"
        ));
    }
}
