//! The tenant's signing keys: list them, rotate them (RFC 9701 answers, the JWKS).

use super::Admin;
use crate::domain::audit::AuditAction;
use crate::service::{now, Gateway, Result};

/// Retiring keys a tenant keeps published at most. A rotation past it drops the
/// oldest: rotating in a loop must not grow the public JWKS (and every verifier's copy
/// of it) without bound. Three rotations in one `keys.retire_after_seconds` are
/// already an incident, not routine.
pub(super) const MAX_RETIRING_KEYS: usize = 3;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub created_at: i64,
    pub state: KeyState,
    /// For a retiring key: when it leaves the JWKS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_until: Option<i64>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs every answer from now on.
    Active,
    /// Replaced, and still published so that what it signed verifies.
    Retiring,
}

impl Gateway {
    /// The keys the tenant's JWKS publishes, the signing one first.
    pub async fn list_keys(&self, admin: &Admin) -> Result<Vec<KeyView>> {
        let retire_after = self.keys.retire_after;
        let rows = self
            .store
            .signing_keys(admin.tenant.id, now().saturating_sub(retire_after))
            .await?;
        let mut views: Vec<KeyView> = rows
            .into_iter()
            .map(|row| KeyView {
                kid: row.kid,
                created_at: row.created_at,
                state: match row.retired_at {
                    None => KeyState::Active,
                    Some(_) => KeyState::Retiring,
                },
                published_until: row.retired_at.map(|at| at.saturating_add(retire_after)),
            })
            .collect();
        views.sort_by_key(|view| view.state != KeyState::Active);
        Ok(views)
    }

    /// Makes a new key the tenant's signing key; the previous one retires and stays in
    /// the JWKS for `keys.retire_after_seconds`.
    pub async fn rotate_key(&self, admin: &Admin) -> Result<KeyView> {
        let now = now();
        let key = self.keys.new_key(admin.tenant.domain.as_str(), now)?;
        let audit = admin.audit(AuditAction::KeyRotate, &key.kid);
        let unpublished_before = now.saturating_sub(self.keys.retire_after);
        let write = self
            .store
            .rotate_signing_key(
                admin.tenant.id,
                &key,
                unpublished_before,
                MAX_RETIRING_KEYS,
                &audit,
            )
            .await?;
        self.settle(write).await?;
        Ok(KeyView {
            kid: key.kid,
            created_at: now,
            state: KeyState::Active,
            published_until: None,
        })
    }
}
