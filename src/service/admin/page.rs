//! Pages of the admin lists: at most `limit` items after a cursor, optionally only the
//! names that start with `q`. A cursor is the last key of a page sealed under the master
//! key for its list and tenant, so every instance reads it and none can be forged or
//! carried to another list or tenant.

use super::invalid;
use crate::domain::tenant::TenantId;
use crate::service::{Gateway, Result};
use crate::store::NamePage;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Items in a page when the caller does not say.
const DEFAULT_PAGE: i64 = 100;
/// The most items one page may hold.
pub const MAX_PAGE: i64 = 1000;
/// The longest prefix a search may give, in characters.
const MAX_SEARCH_CHARS: usize = 256;

/// What a caller asks of a list.
#[derive(Debug, Default, Clone)]
pub struct ListRequest {
    pub limit: Option<i64>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Only names that start with this.
    pub q: Option<String>,
}

/// A page of a list, and the cursor of the next one while more remain.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// The lists that page, each with its own cursors.
#[derive(Debug, Clone, Copy)]
pub(super) enum List {
    Users,
    Roles,
    Clients,
    Tenants,
    Audit,
    Grants,
}

impl List {
    fn context(self, tenant_id: TenantId) -> String {
        let name = match self {
            List::Users => "users",
            List::Roles => "roles",
            List::Clients => "clients",
            List::Tenants => "tenants",
            List::Audit => "audit",
            List::Grants => "grants",
        };
        format!("portcullis cursor {name} {tenant_id}")
    }
}

fn not_a_cursor() -> crate::service::Error {
    invalid("after", "not a cursor this list gave")
}

/// The page size asked for, checked.
pub(super) fn page_limit(limit: Option<i64>) -> Result<i64> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(invalid("limit", format!("a number from 1 to {MAX_PAGE}")))
    }
}

/// A search prefix: printable, at most [`MAX_SEARCH_CHARS`]; an empty one searches
/// nothing out.
fn search_prefix(q: Option<&str>) -> Result<Option<String>> {
    let Some(q) = q.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    if q.chars().any(char::is_control) {
        return Err(invalid("q", "must not hold control characters"));
    }
    if q.chars().count() > MAX_SEARCH_CHARS {
        return Err(invalid(
            "q",
            format!("must be at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    Ok(Some(q.to_owned()))
}

impl Gateway {
    /// The store's window for `request` on `list` of `tenant_id`: one more item than
    /// the page holds, to learn whether another page follows.
    pub(super) fn name_page(
        &self,
        list: List,
        tenant_id: TenantId,
        request: &ListRequest,
    ) -> Result<NamePage> {
        Ok(NamePage {
            after: self.open_cursor(list, tenant_id, request.after.as_deref())?,
            prefix: search_prefix(request.q.as_deref())?,
            limit: page_limit(request.limit)? + 1,
        })
    }

    /// The page `rows` make, `asked` having been one more than the page holds; `key`
    /// names an item for the next cursor.
    pub(super) fn page<T>(
        &self,
        list: List,
        tenant_id: TenantId,
        mut rows: Vec<T>,
        asked: i64,
        key: impl Fn(&T) -> String,
    ) -> Page<T> {
        let holds = usize::try_from(asked - 1).unwrap_or(usize::MAX);
        let next = if rows.len() > holds {
            rows.truncate(holds);
            rows.last()
                .map(|last| self.seal_cursor(list, tenant_id, &key(last)))
        } else {
            None
        };
        Page { items: rows, next }
    }

    /// The key of a cursor made of a time and a name (`{at}:{name}`), as the audit log
    /// and the grants page by.
    pub(super) fn open_timed_cursor(
        &self,
        list: List,
        tenant_id: TenantId,
        cursor: Option<&str>,
    ) -> Result<Option<(i64, String)>> {
        let key = self.open_cursor(list, tenant_id, cursor)?;
        key.map(|key| {
            let (at, name) = key.split_once(':')?;
            Some((at.parse().ok()?, name.to_owned()))
        })
        .map(|parsed| parsed.ok_or_else(not_a_cursor))
        .transpose()
    }

    fn seal_cursor(&self, list: List, tenant_id: TenantId, key: &str) -> String {
        let context = list.context(tenant_id);
        URL_SAFE_NO_PAD.encode(
            self.keys
                .seal_with_master(key.as_bytes(), context.as_bytes()),
        )
    }

    /// The key a cursor of this list and tenant holds; a cursor the server did not
    /// give for them is a 400.
    fn open_cursor(
        &self,
        list: List,
        tenant_id: TenantId,
        cursor: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        let context = list.context(tenant_id);
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|sealed| self.keys.open_with_master(&sealed, context.as_bytes()))
            .and_then(|key| String::from_utf8(key).ok())
            .map(Some)
            .ok_or_else(not_a_cursor)
    }
}
