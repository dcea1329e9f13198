//! Scopes (RFC 6749 §3.3): what a request asks for, what a client may be given, and
//! what a refresh may keep.

use std::fmt;

/// A scope as granted: distinct scope tokens, in the order first asked. It is stored
/// and shown as the tokens joined by single spaces (empty: no scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(Vec<String>);

/// Why a requested scope cannot be granted; the text says which token and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidScope(String);

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl Scope {
    /// A requested scope: space-separated tokens, repeats dropped. `None` and an empty
    /// text ask for no scope.
    pub fn parse(requested: Option<&str>) -> Result<Self, InvalidScope> {
        let mut tokens: Vec<String> = Vec::new();
        for token in requested
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
        {
            if !is_scope_token(token) {
                return Err(InvalidScope(format!("{token:?} is not a valid scope")));
            }
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Ok(Scope(tokens))
    }

    /// A scope as it was granted and stored, taken as it is.
    pub fn granted(stored: &str) -> Self {
        Scope(
            stored
                .split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The scope if a client allowed `allowed` may have it; an empty list allows any.
    pub fn allowed_by(self, allowed: &[String]) -> Result<Self, InvalidScope> {
        let outside = self
            .0
            .iter()
            .find(|t| !allowed.is_empty() && !allowed.contains(t));
        match outside {
            Some(token) => Err(InvalidScope(format!(
                "the client may not request {token:?}"
            ))),
            None => Ok(self),
        }
    }

    /// RFC 6749 §6: what a refresh asking for `requested` keeps of the scope `granted`
    /// (stored text): all of it when it asks for nothing, less when it asks for less,
    /// never more.
    pub fn narrowed(granted: &str, requested: Option<&str>) -> Result<Self, InvalidScope> {
        let granted = Scope::granted(granted);
        if requested.is_none() {
            return Ok(granted);
        }
        let asked = Scope::parse(requested)?;
        match asked.0.iter().find(|t| !granted.0.contains(t)) {
            Some(token) => Err(InvalidScope(format!(
                "{token:?} was not granted originally"
            ))),
            None => Ok(asked),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(client: &[&str], requested: Option<&str>) -> Result<String, InvalidScope> {
        let client: Vec<String> = client.iter().map(|s| s.to_string()).collect();
        Ok(Scope::parse(requested)?.allowed_by(&client)?.to_string())
    }

    #[test]
    fn scopes_are_checked_against_the_client() {
        assert_eq!(allowed(&[], Some("test1 test2")).unwrap(), "test1 test2");
        assert_eq!(allowed(&["a", "b"], Some("b  a b")).unwrap(), "b a");
        assert!(allowed(&["a"], Some("a c")).is_err());
        assert!(allowed(&[], Some("a\"")).is_err());
        assert_eq!(allowed(&["a"], None).unwrap(), "");
    }

    #[test]
    fn a_refresh_may_narrow_but_not_widen() {
        let narrowed = |requested| Scope::narrowed("a b", requested).map(|s| s.to_string());
        assert_eq!(narrowed(None).unwrap(), "a b");
        assert_eq!(narrowed(Some("b")).unwrap(), "b");
        assert!(narrowed(Some("c")).is_err());
        assert_eq!(Scope::narrowed("", None).unwrap().to_string(), "");
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("openid"));
        assert!(is_scope_token("read:all"));
        assert!(!is_scope_token(""));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("a\\b"));
        assert!(!is_scope_token("é"));
    }
}
