//! A tenant's audit log, newest first, in pages (SPEC §8).

use super::{invalid, Admin};
use crate::service::{Gateway, Result};
use serde::Serialize;

/// Events in a page of the audit log when the caller does not say.
const DEFAULT_AUDIT_PAGE: i64 = 100;
/// The most events one page may ask for.
pub const MAX_AUDIT_PAGE: i64 = 1000;

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
}

impl Gateway {
    /// A page of the log: `limit` events (100 unless asked, at most
    /// [`MAX_AUDIT_PAGE`]) older than event `before`.
    pub async fn audit_log(
        &self,
        admin: &Admin,
        limit: Option<i64>,
        before: Option<i64>,
    ) -> Result<Vec<AuditView>> {
        let limit = limit.unwrap_or(DEFAULT_AUDIT_PAGE);
        if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
            let range = format!("a number from 1 to {MAX_AUDIT_PAGE}");
            return Err(invalid("limit", range));
        }
        let events = self
            .store
            .audit_events(admin.tenant.id, limit, before)
            .await?;
        Ok(events
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                client_address: e.client_address,
                detail: e.detail,
            })
            .collect())
    }
}
