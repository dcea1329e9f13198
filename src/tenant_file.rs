//! Tenant files: `tenants/{domain}.toml`, parsed and validated before anything is
//! written, so that a bad file names itself and its key and changes nothing (SPEC §3).

use crate::domain::client::{self, AccessTokenFormat};
use crate::domain::permission::{validate_role_name, Permission, ResourceRule};
use crate::domain::principal::{validate_username, Profile};
use crate::domain::tenant::{Lifetimes, TenantDomain, TenantRateLimits, TenantSettings};
use crate::store::{NewTenant, RuleRow};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    pub domain: String,
    #[serde(default)]
    pub tokens: TokensSection,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    #[serde(default)]
    pub introspection: IntrospectionSection,
    /// Replaces the default rules when present.
    pub resources: Option<Vec<RuleRow>>,
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
}

/// The tenant's own request limits per second; absent keys follow the configuration.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsSection {
    pub requests_per_caller: Option<u32>,
    pub requests_per_tenant: Option<u32>,
}

impl From<RateLimitsSection> for TenantRateLimits {
    fn from(section: RateLimitsSection) -> Self {
        TenantRateLimits {
            requests_per_caller: section.requests_per_caller,
            requests_per_tenant: section.requests_per_tenant,
        }
    }
}

impl From<TenantRateLimits> for RateLimitsSection {
    fn from(limits: TenantRateLimits) -> Self {
        RateLimitsSection {
            requests_per_caller: limits.requests_per_caller,
            requests_per_tenant: limits.requests_per_tenant,
        }
    }
}

/// Token lifetimes in seconds, under the names of the file's `[tokens]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensSection {
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub authorization_code_ttl: i64,
    pub grant_max_lifetime: i64,
}

impl Default for TokensSection {
    fn default() -> Self {
        Lifetimes::default().into()
    }
}

impl From<Lifetimes> for TokensSection {
    fn from(l: Lifetimes) -> Self {
        TokensSection {
            access_token_ttl: l.access_token,
            refresh_token_ttl: l.refresh_token,
            authorization_code_ttl: l.authorization_code,
            grant_max_lifetime: l.grant_max_lifetime,
        }
    }
}

impl TokensSection {
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            access_token: self.access_token_ttl,
            refresh_token: self.refresh_token_ttl,
            authorization_code: self.authorization_code_ttl,
            grant_max_lifetime: self.grant_max_lifetime,
        }
    }

    /// Every lifetime is a positive number of seconds; the error names the first key
    /// that is not, as `tokens.{key}`.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (key, ttl) in [
            ("tokens.access_token_ttl", self.access_token_ttl),
            ("tokens.refresh_token_ttl", self.refresh_token_ttl),
            ("tokens.authorization_code_ttl", self.authorization_code_ttl),
            ("tokens.grant_max_lifetime", self.grant_max_lifetime),
        ] {
            if ttl <= 0 {
                return Err((
                    key.into(),
                    format!("must be a positive number of seconds, not {ttl}"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub name: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    pub password_hash: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// The profile claims (`name`, `email`, `email_verified`), all optional.
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
}

impl UserEntry {
    pub fn profile(&self) -> Profile {
        Profile {
            name: self.name.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub client_id: String,
    pub client_secret_hash: Option<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// PKCE S256 at the code grant; `false` only for a legacy confidential client.
    #[serde(default = "pkce_by_default")]
    pub require_pkce: bool,
    /// What people call it.
    pub name: Option<String>,
    /// `opaque` (the default) or `jwt`: RFC 9068 access tokens.
    #[serde(default)]
    pub access_token_format: AccessTokenFormat,
}

fn pkce_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntrospectionSection {
    pub allowed_clients: Vec<String>,
}

/// A tenant file that cannot be used; says which file and which key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct FileError {
    pub file: String,
    pub key: String,
    pub message: String,
}

/// Reads and validates every `*.toml` in `dir`, sorted by name. A missing folder holds
/// no tenants.
pub fn load_dir(dir: &Path) -> Result<Vec<TenantFile>, FileError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_error(dir, "-", e.to_string())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let files = paths
        .iter()
        .map(|p| load_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client_ids: Vec<&str> = files
        .iter()
        .flat_map(|f| f.clients.iter().map(|c| c.client_id.as_str()))
        .collect();
    client_ids.sort_unstable();
    if let Some(pair) = client_ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(file_error(
            dir,
            "clients.client_id",
            format!(
                "{:?} is declared twice; client ids are unique across tenants",
                pair[0]
            ),
        ));
    }
    Ok(files)
}

fn load_file(path: &Path) -> Result<TenantFile, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, "-", e.to_string()))?;
    parse(path, &text)
}

/// Parses and validates the text of the tenant file at `path`.
pub fn parse(path: &Path, text: &str) -> Result<TenantFile, FileError> {
    let file: TenantFile = toml::from_str(text).map_err(|e| {
        let message = e.message().to_owned();
        let key = e
            .span()
            .map(|s| locate(text, s.start))
            .unwrap_or_else(|| "-".into());
        file_error(path, &key, message)
    })?;
    file.validate()
        .map_err(|(key, message)| file_error(path, &key, message))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != file.domain {
        return Err(file_error(
            path,
            "domain",
            format!("{:?} must match the file name {stem:?}", file.domain),
        ));
    }
    Ok(file)
}

fn locate(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    format!("line {line}")
}

fn file_error(path: &Path, key: &str, message: String) -> FileError {
    FileError {
        file: path.display().to_string(),
        key: key.to_owned(),
        message,
    }
}

impl TenantFile {
    fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: String, message: String| Err((key, message));
        if let Err(e) = TenantDomain::parse(&self.domain) {
            return err("domain".into(), e.to_string());
        }
        self.tokens.check()?;
        for (i, role) in self.roles.iter().enumerate() {
            if let Err(e) = validate_role_name(&role.name) {
                return err(format!("roles[{i}].name"), e.to_string());
            }
            for (j, p) in role.permissions.iter().enumerate() {
                if let Err(e) = Permission::parse(p) {
                    return err(format!("roles[{i}].permissions[{j}]"), e.to_string());
                }
            }
        }
        for (i, user) in self.users.iter().enumerate() {
            if let Err(e) = validate_username(&user.username) {
                return err(format!("users[{i}].username"), e.to_string());
            }
            if let Err(message) = check_phc(&user.password_hash) {
                return err(format!("users[{i}].password_hash"), message);
            }
            if let Err(e) = user.profile().check() {
                return err(format!("users[{i}].{}", e.field), e.message.to_owned());
            }
            for (j, role) in user.roles.iter().enumerate() {
                if !self.roles.iter().any(|r| &r.name == role) && role != "admin" {
                    return err(
                        format!("users[{i}].roles[{j}]"),
                        format!("role {role:?} is not declared in this file"),
                    );
                }
            }
        }
        for (i, client) in self.clients.iter().enumerate() {
            if let Some(hash) = &client.client_secret_hash {
                if let Err(message) = check_phc(hash) {
                    return err(format!("clients[{i}].client_secret_hash"), message);
                }
            }
            let public = client.client_secret_hash.is_none();
            if let Err(e) = client::validate(
                &client.client_id,
                public,
                &client.grant_types,
                &client.redirect_uris,
                &client.scopes,
                client.require_pkce,
            ) {
                return err(format!("clients[{i}].{}", e.field), e.message);
            }
            if let Some(Err(e)) = client.name.as_deref().map(client::check_name) {
                return err(format!("clients[{i}].{}", e.field), e.message);
            }
        }
        if let Some(rules) = &self.resources {
            for (i, r) in rules.iter().enumerate() {
                if let Err(e) =
                    ResourceRule::new(&r.context, r.secured, &r.http_method, &r.permissions)
                {
                    return err(format!("resources[{i}]"), e.to_string());
                }
            }
        }
        Ok(())
    }

    /// The tenant as this file declares it.
    pub fn tenant(&self) -> NewTenant {
        NewTenant {
            domain: self.domain.clone(),
            settings: self.settings(),
            resources: self.resources.clone(),
        }
    }

    fn settings(&self) -> TenantSettings {
        TenantSettings {
            lifetimes: self.tokens.lifetimes(),
            introspection_clients: self.introspection.allowed_clients.clone(),
            rate_limits: self.rate_limits.into(),
        }
    }
}

/// A stored secret must be an argon2id PHC string (SPEC §4).
fn check_phc(hash: &str) -> Result<(), String> {
    match argon2::PasswordHash::new(hash) {
        Ok(parsed) if parsed.algorithm.as_str() == "argon2id" => Ok(()),
        Ok(parsed) => Err(format!("must be argon2id, not {}", parsed.algorithm)),
        Err(_) => Err("not a PHC string; make one with `portcullis hash-password`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_spec_example_parses() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"domain = "foo.com"
[tokens]
access_token_ttl = 3600
refresh_token_ttl = 86400
authorization_code_ttl = 300
[[roles]]
name = "admin"
permissions = ["/permission/admin"]
[[users]]
username = "admin"
password_hash = "{HASH}"
roles = ["admin"]
[[clients]]
client_id = "okaN2IXAsLx5SBH9Los1C6zX1RIa"
client_secret_hash = "{HASH}"
grant_types = ["client_credentials", "password", "authorization_code", "refresh_token"]
redirect_uris = ["https://app.foo.com/callback"]
scopes = []
[introspection]
allowed_clients = []
[[resources]]
context = "(.*)/oauth2/introspect(.*)"
secured = true
http_method = "all"
permissions = ["/permission/admin/manage/identity/applicationmgt/view"]
"#
        );
        let f = load_file(&write(dir.path(), "foo.com.toml", &text)).unwrap();
        assert_eq!(f.domain, "foo.com");
        assert_eq!(f.clients[0].grant_types.len(), 4);
        assert_eq!(f.resources.unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("domain = \"bar.com\"\n", "domain"),
            ("domain = \"foo.com\"\n[tokens]\naccess_token_ttl = 0\n", "tokens.access_token_ttl"),
            ("domain = \"foo.com\"\n[[users]]\nusername = \"a\"\npassword_hash = \"plain\"\n", "users[0].password_hash"),
            ("domain = \"foo.com\"\n[[roles]]\nname = \"r\"\npermissions = [\"/perm\"]\n", "roles[0].permissions[0]"),
            ("domain = \"foo.com\"\n[[clients]]\nclient_id = \"c\"\ngrant_types = [\"implicit\"]\n", "clients[0].grant_types[0]"),
            ("domain = \"foo.com\"\n[[clients]]\nclient_id = \"c\"\ngrant_types = [\"authorization_code\"]\nname = \"\"\n", "clients[0].name"),
            ("domain = \"foo.com\"\n[[resources]]\ncontext = \"(\"\n", "resources[0]"),
            ("domain = \"foo.com\"\nextra = 1\n", "line 2"),
        ];
        let bad_email = format!(
            "domain = \"foo.com\"\n[[users]]\nusername = \"a\"\npassword_hash = \"{HASH}\"\nemail = \"not-an-address\"\n"
        );
        let unverifiable = format!(
            "domain = \"foo.com\"\n[[users]]\nusername = \"a\"\npassword_hash = \"{HASH}\"\nemail_verified = true\n"
        );
        let profiles = [
            (bad_email.as_str(), "users[0].email"),
            (unverifiable.as_str(), "users[0].email_verified"),
        ];
        let cases: Vec<(&str, &str)> = cases.into_iter().chain(profiles).collect();
        for (text, key) in cases {
            let path = write(dir.path(), "foo.com.toml", text);
            let e = load_file(&path).unwrap_err();
            assert!(e.to_string().contains("foo.com.toml"), "{e}");
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn a_client_id_declared_by_two_tenants_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let client = format!("[[clients]]\nclient_id = \"same\"\nclient_secret_hash = \"{HASH}\"\ngrant_types = [\"client_credentials\"]\n");
        write(
            dir.path(),
            "a.com.toml",
            &format!("domain = \"a.com\"\n{client}"),
        );
        write(
            dir.path(),
            "b.com.toml",
            &format!("domain = \"b.com\"\n{client}"),
        );
        let e = load_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("same"), "{e}");
    }

    // Fuzzing of untrusted input: arbitrary bytes never panic. PROPTEST_CASES raises
    // the number of cases for a longer run (README, "Abuse resistance").
    proptest::proptest! {
        #[test]
        fn any_tenant_file_loads_or_names_its_error(text in "(domain|tokens|\\[|\\]|=|\"|[a-z_.]{1,12}|[0-9]{1,6}|\n| ){0,60}") {
            let _ = parse(Path::new("tenants/foo.com.toml"), &text);
        }
    }
}
