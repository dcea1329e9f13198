//! Background purge (SPEC §10): tokens whose whole grant stopped being active more than
//! `tokens.retention_seconds` ago, and audit events older than `audit.retention_days`,
//! are deleted in small batches, one instance at a time. Console and sign-in sessions
//! that ended without being presented again go too (`console.rs`, `session.rs`).

use super::{now, Gateway, Result};
use crate::store::Purged;
use std::sync::Arc;
use std::time::Duration;

/// How often an instance looks for what is due.
const EVERY: Duration = Duration::from_secs(60);
/// Rows per transaction: small, so that a purge never holds the write lock for long.
const BATCH: i64 = 500;

impl Gateway {
    /// Purges every minute while the gateway lives.
    pub fn spawn_purger(self: &Arc<Self>) {
        self.every(EVERY, async |gateway| {
            match gateway.purge_due().await {
                Ok(purged) if purged != Purged::default() => tracing::info!(
                    tokens = purged.tokens,
                    audit_events = purged.audit_events,
                    "purged"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the purge failed; trying again later"),
            }
            let stale = async {
                let console = gateway.end_stale_console_sessions().await?;
                Ok::<_, super::Error>((console, gateway.end_stale_sign_in_sessions().await?))
            };
            match stale.await {
                Ok((0, 0)) => {}
                Ok((console, sign_in)) => tracing::info!(
                    console_sessions = console,
                    sign_in_sessions = sign_in,
                    "purged"
                ),
                Err(e) => tracing::warn!(error = %e, "the purge failed; trying again later"),
            }
        });
    }

    /// Deletes, batch after batch, what has been kept past its retention; stops when a
    /// batch comes back short, or when another instance is purging.
    pub async fn purge_due(&self) -> Result<Purged> {
        let now = now();
        let tokens_before = now.saturating_sub(self.config.tokens.retention_seconds as i64);
        let audit_days = self.config.audit.retention_days as i64;
        let audit_before = now.saturating_sub(audit_days.saturating_mul(86_400));
        let mut total = Purged::default();
        loop {
            let Some(batch) = self.store.purge(tokens_before, audit_before, BATCH).await? else {
                return Ok(total);
            };
            total.tokens += batch.tokens;
            total.audit_events += batch.audit_events;
            if batch.tokens < BATCH as u64 && batch.audit_events < BATCH as u64 {
                return Ok(total);
            }
            // Let the requests waiting for the write lock go first.
            tokio::task::yield_now().await;
        }
    }
}
