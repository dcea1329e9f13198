//! Revocation (RFC 7009): a client gives back one of its tokens, with the cascade of
//! SPEC §6.

use super::grant::presented_digest;
use super::{now, Error, Gateway, Result};
use crate::domain::token::{Event, Revocation, TokenKind};
use crate::store::ClientRecord;

impl Gateway {
    /// RFC 7009: revokes a token of `client` and its cascade (SPEC §6). Unknown tokens,
    /// tokens already revoked and another client's tokens change nothing.
    pub async fn revoke(&self, client: &ClientRecord, token: &str) -> Result<()> {
        let Some(tenant) = self.directory.tenant_by_id(client.tenant_id) else {
            return Err(Error::InvalidClient);
        };
        let Some(digest) = presented_digest(token) else {
            return Ok(());
        };
        let Some(record) = self.store.token(tenant.id, &digest).await? else {
            return Ok(());
        };
        if record.token.client_id != client.client_id {
            return Ok(());
        }
        // RFC 7009 covers access and refresh tokens only.
        if record.token.kind == TokenKind::AuthorizationCode {
            return Ok(());
        }
        let steps = super::admin::revocation_steps(&record, Event::Revoke(Revocation::ByClient));
        let changed = self
            .store
            .transitions(
                tenant.id,
                &steps,
                now(),
                &format!("client:{}", client.client_id),
            )
            .await?;
        self.tokens.forget(&changed);
        Ok(())
    }
}
