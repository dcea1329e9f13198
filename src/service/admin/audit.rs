//! A tenant's audit log, newest first, in pages and filtered (SPEC §8).

use super::page::{page_limit, List, ListRequest, Page};
use super::{invalid, Admin};
use crate::service::{Gateway, Result};
use crate::store::{AuditEvent, AuditQuery};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct AuditView {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client_address: String,
    /// What the change changed, when the action alone does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `console` when the change was made in the console.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl From<AuditEvent> for AuditView {
    fn from(e: AuditEvent) -> Self {
        AuditView {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            client_address: e.client_address,
            detail: e.detail,
            via: e.via,
        }
    }
}

/// What the log is filtered by; every filter given narrows the page.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// An event id: only older events (the cursor of earlier releases).
    pub before: Option<i64>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Gateway {
    /// A page of the log, newest first by time: `limit` events (100 unless asked, at most
    /// 1,000) after the cursor `after` (or older than event `before`), matching the
    /// filter.
    pub async fn audit_log(
        &self,
        admin: &Admin,
        request: &ListRequest,
        filter: AuditFilter,
    ) -> Result<Page<AuditView>> {
        let tenant_id = admin.tenant.id;
        let after = self.open_timed_cursor(List::Audit, tenant_id, request.after.as_deref())?;
        let after = after
            .map(|(at, id)| id.parse().map(|id| (at, id)))
            .transpose()
            .map_err(|_| invalid("after", "not a cursor this list gave"))?;
        if after.is_some() && filter.before.is_some() {
            return Err(invalid("before", "give either after or before"));
        }
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if since > until {
                return Err(invalid("since", "must not be later than until"));
            }
        }
        if request.q.is_some() {
            return Err(invalid(
                "q",
                "the audit log is searched by action, actor and target",
            ));
        }
        let query = AuditQuery {
            after,
            before: filter.before,
            action: filter.action,
            actor: filter.actor,
            target: filter.target,
            since: filter.since,
            until: filter.until,
            limit: page_limit(request.limit)? + 1,
        };
        let events = self.store.audit_events(tenant_id, &query).await?;
        let page = self.page(List::Audit, tenant_id, events, query.limit, |e| {
            format!("{}:{}", e.at, e.id)
        });
        Ok(page.map(AuditView::from))
    }
}
