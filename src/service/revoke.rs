//! Revocation (RFC 7009): a client gives back one of its tokens, with the cascade of
//! SPEC §6.

use super::authenticate::AuthenticatedClient;
use super::token_text::presented_digest;
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::audit::Actor;
use crate::domain::tenant::Tenant;
use crate::domain::token::{Event, Revocation, TokenKind};
use crate::store::{ChangedBy, ClientRecord, Selection, Step, TokenRecord};

impl Gateway {
    /// RFC 7009: revokes a token of `client` and its cascade (SPEC §6). Unknown tokens,
    /// tokens already revoked and another client's tokens change nothing.
    pub async fn revoke(
        &self,
        client: &AuthenticatedClient,
        token: &str,
        origin: &Origin,
    ) -> Result<()> {
        let client: &ClientRecord = &client.0;
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
        let how = Revocation::ByClient;
        let steps = revocation_steps(&record, Event::Revoke(how));
        let by = ChangedBy::from_address(Actor::client(&client.client_id), origin.address());
        self.revoke_steps(&tenant, &steps, how, now(), &by).await
    }

    /// Moves the tokens `steps` select by a revocation, counts them by `how`, and
    /// settles the write: every revocation, by a client or for reuse, ends here.
    pub(super) async fn revoke_steps(
        &self,
        tenant: &Tenant,
        steps: &[Step],
        how: Revocation,
        now: i64,
        by: &ChangedBy,
    ) -> Result<()> {
        let write = self.store.transitions(tenant.id, steps, now, by).await?;
        let revoked = write.changes().tokens.len();
        let reason = how.reason().as_str();
        self.metrics
            .revoked(tenant.domain.as_str(), reason, revoked);
        self.settle(write).await
    }
}

/// What a revocation of this token also ends (SPEC §6): an access token's refresh
/// token, or a refresh token's access tokens.
pub(super) fn revocation_steps(record: &TokenRecord, event: Event) -> Vec<Step> {
    let this = Step::new(record.token.kind, Selection::Token(record.id), event);
    match record.token.kind {
        TokenKind::Access => match record.token.refresh_digest {
            Some(refresh) => vec![
                this,
                Step::new(TokenKind::Refresh, Selection::RefreshOf(refresh), event),
            ],
            None => vec![this],
        },
        TokenKind::Refresh => vec![
            this,
            Step::new(
                TokenKind::Access,
                Selection::IssuedWith(record.token.digest),
                event,
            ),
        ],
        TokenKind::AuthorizationCode => vec![this],
    }
}
