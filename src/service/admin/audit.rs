//! A tenant's audit log, newest first, in pages (SPEC §8).

use super::{invalid, Admin};
use crate::service::{Gateway, Result};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct AuditView {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client_address: String,
}

impl Gateway {
    pub async fn audit_log(
        &self,
        admin: &Admin,
        limit: Option<&str>,
        before: Option<&str>,
    ) -> Result<Vec<AuditView>> {
        let limit = match limit {
            None => 100,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| invalid("limit", "a number from 1 to 1000"))?,
        };
        let before = before
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| invalid("before", "an event id"))
            })
            .transpose()?;
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
            })
            .collect())
    }
}
