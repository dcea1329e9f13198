//! Permission paths, resource rules and the one authorization decision (SPEC §5).

use regex::Regex;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A permission such as `/permission/admin/manage/identity/applicationmgt/view`.
/// Holding a path grants every path beneath it.
/// A role name that tenant files and the admin API both refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a role name is 1 to 128 characters without '/' or control characters")]
pub struct InvalidRoleName;

/// One rule for role names wherever they come from. A name appears as one segment of
/// `/api/v1/roles/{name}`, so it holds no `/`.
pub fn validate_role_name(name: &str) -> Result<(), InvalidRoleName> {
    let ok = !name.is_empty()
        && name.chars().count() <= 128
        && !name.chars().any(|c| c.is_control() || c == '/');
    if ok {
        Ok(())
    } else {
        Err(InvalidRoleName)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(String);

/// Why a string is not a permission path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a permission is a path under /permission made of letters, digits, '-', '_' and '.' segments: {0:?}")]
pub struct InvalidPermission(pub String);

impl Permission {
    const ROOT: &'static str = "/permission";

    pub fn parse(path: &str) -> Result<Self, InvalidPermission> {
        let invalid = || InvalidPermission(path.to_owned());
        let rest = path.strip_prefix(Self::ROOT).ok_or_else(invalid)?;
        if !rest.is_empty() {
            let rest = rest.strip_prefix('/').ok_or_else(invalid)?;
            let segment_ok = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            };
            if !rest.split('/').all(segment_ok) {
                return Err(invalid());
            }
        }
        Ok(Permission(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when holding `self` grants `wanted`: the same path or one beneath it, at a
    /// segment boundary (`…/view` does not grant `…/viewer`).
    pub fn grants(&self, wanted: &Permission) -> bool {
        let held = self.0.as_str();
        let wanted = wanted.0.as_str();
        wanted == held
            || (wanted.starts_with(held) && wanted.as_bytes().get(held.len()) == Some(&b'/'))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which request methods a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodMatch {
    All,
    Only(String),
}

impl MethodMatch {
    pub fn parse(s: &str) -> Result<Self, InvalidRule> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(MethodMatch::All);
        }
        let upper = s.to_ascii_uppercase();
        match upper.as_str() {
            "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" => {
                Ok(MethodMatch::Only(upper))
            }
            _ => Err(InvalidRule::Method(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MethodMatch::All => "all",
            MethodMatch::Only(m) => m,
        }
    }

    fn matches(&self, method: &str) -> bool {
        match self {
            MethodMatch::All => true,
            MethodMatch::Only(m) => m.eq_ignore_ascii_case(method),
        }
    }
}

/// Why a resource rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRule {
    #[error("context is not a valid regular expression: {0}")]
    Context(String),
    #[error("http_method must be \"all\" or an HTTP method, not {0:?}")]
    Method(String),
    #[error(transparent)]
    Permission(#[from] InvalidPermission),
}

/// One `{context, secured, http_method, permissions}` rule; `context` must match the
/// whole request path.
#[derive(Debug, Clone)]
pub struct ResourceRule {
    pub context: String,
    pub secured: bool,
    pub method: MethodMatch,
    pub permissions: Vec<Permission>,
    pattern: Regex,
}

impl ResourceRule {
    pub fn new(
        context: &str,
        secured: bool,
        method: &str,
        permissions: &[String],
    ) -> Result<Self, InvalidRule> {
        let pattern = Regex::new(&format!("^(?:{context})$"))
            .map_err(|e| InvalidRule::Context(e.to_string()))?;
        Ok(ResourceRule {
            context: context.to_owned(),
            secured,
            method: MethodMatch::parse(method)?,
            permissions: permissions
                .iter()
                .map(|p| Permission::parse(p))
                .collect::<Result<_, _>>()?,
            pattern,
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.matches(method) && self.pattern.is_match(path)
    }
}

/// The rules every tenant has unless its file or admin replaces them. Compiled once and
/// shared: with thousands of tenants, a copy of their regexes each would be most of
/// what an idle tenant costs.
pub fn default_rules(is_super_tenant: bool) -> Arc<[ResourceRule]> {
    static SUPER: OnceLock<Arc<[ResourceRule]>> = OnceLock::new();
    static OTHER: OnceLock<Arc<[ResourceRule]>> = OnceLock::new();
    let shared = if is_super_tenant { &SUPER } else { &OTHER };
    shared
        .get_or_init(|| compile_default_rules(is_super_tenant))
        .clone()
}

fn compile_default_rules(is_super_tenant: bool) -> Arc<[ResourceRule]> {
    let mut table = vec![
        (
            "(.*)/oauth2/introspect(.*)",
            "/permission/admin/manage/identity/applicationmgt/view",
        ),
        (
            "(.*)/api/v1/users(.*)",
            "/permission/admin/manage/identity/usermgt",
        ),
        (
            "(.*)/api/v1/roles(.*)",
            "/permission/admin/manage/identity/rolemgt",
        ),
        (
            "(.*)/api/v1/resources(.*)",
            "/permission/admin/manage/identity/rolemgt",
        ),
        (
            "(.*)/api/v1/clients(.*)",
            "/permission/admin/manage/identity/applicationmgt",
        ),
        (
            "(.*)/api/v1/tokens(.*)",
            "/permission/admin/manage/identity/tokenmgt",
        ),
        ("(.*)/api/v1/audit(.*)", "/permission/admin/monitor/audit"),
        (
            "(.*)/api/v1/keys(.*)",
            "/permission/admin/manage/identity/keymgt",
        ),
        (
            "(.*)/api/v1/settings(.*)",
            "/permission/admin/manage/identity/tenantmgt",
        ),
    ];
    if is_super_tenant {
        table.push((
            "/api/v1/tenants(.*)",
            "/permission/protected/manage/tenants",
        ));
    }
    compile(&table).into()
}

#[allow(
    clippy::expect_used,
    reason = "the built-in rules are constants that a test parses"
)]
fn compile(table: &[(&str, &str)]) -> Vec<ResourceRule> {
    table
        .iter()
        .map(|(context, permission)| {
            ResourceRule::new(context, true, "all", &[(*permission).to_owned()])
                .expect("built-in rules are valid")
        })
        .collect()
}

/// A tenant's own rules, then the guards of the admin paths that came after tenants
/// could write rules of their own (signing keys, settings), each unless the tenant
/// wrote the same context itself: a path none of the tenant's rules matches still asks
/// for its permission, and a rule of the tenant's that matches it first still decides.
/// Without them, such a tenant would let any of its users rotate its keys or change
/// its settings.
pub fn with_guards(own: Vec<ResourceRule>) -> Arc<[ResourceRule]> {
    static GUARDS: OnceLock<Vec<ResourceRule>> = OnceLock::new();
    let guards = GUARDS.get_or_init(|| {
        compile(&[
            (
                "(.*)/api/v1/keys(.*)",
                "/permission/admin/manage/identity/keymgt",
            ),
            (
                "(.*)/api/v1/settings(.*)",
                "/permission/admin/manage/identity/tenantmgt",
            ),
        ])
    });
    let missing: Vec<ResourceRule> = guards
        .iter()
        .filter(|g| !own.iter().any(|r| r.context == g.context))
        .cloned()
        .collect();
    own.into_iter().chain(missing).collect()
}

/// What the first matching rule asks of a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement<'a> {
    /// No rule matches, or the matching rule is not secured.
    Open,
    /// The caller must hold every one of these.
    Permissions(&'a [Permission]),
}

/// The first rule matching `method` and `path`, with its place in `rules`: the one
/// that decides (SPEC §5).
pub fn deciding_rule<'a>(
    rules: &'a [ResourceRule],
    method: &str,
    path: &str,
) -> Option<(usize, &'a ResourceRule)> {
    rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches(method, path))
}

/// What the deciding rule asks of a caller.
pub fn requirement<'a>(rules: &'a [ResourceRule], method: &str, path: &str) -> Requirement<'a> {
    match deciding_rule(rules, method, path) {
        Some((_, rule)) if rule.secured => Requirement::Permissions(&rule.permissions),
        Some(_) | None => Requirement::Open,
    }
}

/// A caller lacks a permission the matching rule asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the caller lacks {missing}")]
pub struct Denied {
    pub missing: Permission,
}

/// Decides whether a holder of `held` may make this request.
pub fn authorize(
    held: &[Permission],
    rules: &[ResourceRule],
    method: &str,
    path: &str,
) -> Result<(), Denied> {
    match requirement(rules, method, path) {
        Requirement::Open => Ok(()),
        Requirement::Permissions(wanted) => holds_all(held, wanted),
    }
}

/// Every permission in `wanted` is granted by one in `held`.
fn holds_all(held: &[Permission], wanted: &[Permission]) -> Result<(), Denied> {
    match wanted.iter().find(|w| !held.iter().any(|h| h.grants(w))) {
        Some(missing) => Err(Denied {
            missing: missing.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }

    #[test]
    fn a_parent_path_grants_its_children() {
        assert!(p("/permission").grants(&p("/permission/admin/manage")));
        assert!(p("/permission/admin")
            .grants(&p("/permission/admin/manage/identity/applicationmgt/view")));
        assert!(p("/permission/admin").grants(&p("/permission/admin")));
    }

    #[test]
    fn a_sibling_with_a_common_prefix_is_not_granted() {
        assert!(!p("/permission/admin/view").grants(&p("/permission/admin/viewer")));
        assert!(!p("/permission/admin/viewer").grants(&p("/permission/admin/view")));
        assert!(!p("/permission/admin/manage").grants(&p("/permission/admin")));
    }

    #[test]
    fn malformed_permission_paths_are_refused() {
        for bad in [
            "",
            "/",
            "permission",
            "/permissions",
            "/permission/",
            "/permission//a",
            "/permission/a b",
            "/other",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_deciding_rule_is_the_first_that_matches_method_and_path() {
        let rules = vec![
            ResourceRule::new("(.*)/api/v1/users", true, "GET", &["/permission/a".into()]).unwrap(),
            ResourceRule::new(
                "(.*)/api/v1/users(.*)",
                true,
                "all",
                &["/permission/b".into()],
            )
            .unwrap(),
        ];
        let place = |method, path| deciding_rule(&rules, method, path).map(|(i, _)| i);
        assert_eq!(place("GET", "/t/x/api/v1/users"), Some(0));
        assert_eq!(place("POST", "/t/x/api/v1/users"), Some(1));
        assert_eq!(place("GET", "/t/x/api/v1/users/bob"), Some(1));
        assert_eq!(place("GET", "/t/x/api/v1/roles"), None);
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = vec![
            ResourceRule::new("/t/foo/oauth2/introspect", false, "all", &[]).unwrap(),
            ResourceRule::new(
                "(.*)/oauth2/introspect(.*)",
                true,
                "post",
                &["/permission/a".into()],
            )
            .unwrap(),
        ];
        assert_eq!(
            authorize(&[], &rules, "POST", "/t/foo/oauth2/introspect"),
            Ok(())
        );
        assert!(authorize(&[], &rules, "POST", "/oauth2/introspect").is_err());
        assert_eq!(
            authorize(&[p("/permission")], &rules, "POST", "/oauth2/introspect"),
            Ok(())
        );
        // The method does not match the secured rule, and nothing else matches.
        assert_eq!(authorize(&[], &rules, "GET", "/oauth2/introspect"), Ok(()));
    }

    #[test]
    fn context_matches_the_whole_path() {
        let rules =
            vec![
                ResourceRule::new("/oauth2/introspect", true, "all", &["/permission/a".into()])
                    .unwrap(),
            ];
        assert_eq!(
            authorize(&[], &rules, "POST", "/x/oauth2/introspect"),
            Ok(())
        );
        assert!(authorize(&[], &rules, "POST", "/oauth2/introspect").is_err());
    }

    #[test]
    fn every_listed_permission_is_required() {
        let rule = ResourceRule::new(
            ".*",
            true,
            "all",
            &["/permission/a".into(), "/permission/b".into()],
        )
        .unwrap();
        let rules = [rule];
        let denied = authorize(&[p("/permission/a")], &rules, "GET", "/x").unwrap_err();
        assert_eq!(denied.missing, p("/permission/b"));
        // A child of a wanted path does not grant the path itself.
        assert!(authorize(
            &[p("/permission/a"), p("/permission/b/c")],
            &rules,
            "GET",
            "/x"
        )
        .is_err());
        assert_eq!(
            authorize(
                &[p("/permission/a"), p("/permission/b")],
                &rules,
                "GET",
                "/x"
            ),
            Ok(())
        );
    }

    #[test]
    fn invalid_rules_are_refused() {
        assert!(matches!(
            ResourceRule::new("(", true, "all", &[]),
            Err(InvalidRule::Context(_))
        ));
        assert!(matches!(
            ResourceRule::new(".*", true, "FETCH", &[]),
            Err(InvalidRule::Method(_))
        ));
        assert!(matches!(
            ResourceRule::new(".*", true, "all", &["/nope".into()]),
            Err(InvalidRule::Permission(_))
        ));
    }

    #[test]
    fn own_rules_keep_the_guards_of_keys_and_settings() {
        let open = ResourceRule::new("(.*)/oauth2/(.*)", false, "all", &[]).unwrap();
        let rules = with_guards(vec![open]);
        let nothing: [Permission; 0] = [];
        assert_eq!(
            authorize(&nothing, &rules, "POST", "/t/a.com/oauth2/introspect"),
            Ok(())
        );
        for path in ["/t/a.com/api/v1/settings", "/t/a.com/api/v1/keys/rotate"] {
            assert!(authorize(&nothing, &rules, "PUT", path).is_err(), "{path}");
        }
        let manager = p("/permission/admin/manage/identity/tenantmgt");
        assert_eq!(
            authorize(&[manager], &rules, "PUT", "/t/a.com/api/v1/settings"),
            Ok(())
        );
        // A rule of the tenant's that matches first still decides.
        let mine = ResourceRule::new("(.*)/api/v1/settings", false, "all", &[]).unwrap();
        let rules = with_guards(vec![mine]);
        assert_eq!(
            authorize(&nothing, &rules, "GET", "/t/a.com/api/v1/settings"),
            Ok(())
        );
    }

    #[test]
    fn default_rules_guard_introspection_and_tenants() {
        let rules = default_rules(true);
        let view = p("/permission/admin/manage/identity/applicationmgt/view");
        assert_eq!(
            authorize(
                std::slice::from_ref(&view),
                &rules,
                "POST",
                "/t/foo.com/oauth2/introspect"
            ),
            Ok(())
        );
        assert!(authorize(&[view], &rules, "GET", "/api/v1/tenants").is_err());
        assert!(default_rules(false)
            .iter()
            .all(|r| !r.context.contains("tenants")));
    }
}
