//! The token endpoint (RFC 6749 §3.2): which grant, for whom, with what scope. The
//! grants that spend a credential are in `redeem.rs` (a code, a refresh token); every
//! grant issues through `issue.rs`.

use super::authenticate::AuthenticatedClient;
use super::issue::{allowed_scope, Issuance, TokenResponse};
use super::redeem::Presenter;
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::audit::Actor;
use crate::domain::client::GrantType;
use crate::domain::principal::sign_in_name_in;
use crate::store::{ChangedBy, ClientRecord};
use secrecy::SecretString;

/// A grant at the token endpoint.
#[derive(Debug)]
pub enum Grant {
    AuthorizationCode {
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<SecretString>,
    },
    ClientCredentials {
        scope: Option<String>,
    },
    Password {
        username: String,
        password: SecretString,
        scope: Option<String>,
    },
    RefreshToken {
        refresh_token: SecretString,
        scope: Option<String>,
    },
}

impl Grant {
    fn grant_type(&self) -> GrantType {
        match self {
            Grant::ClientCredentials { .. } => GrantType::ClientCredentials,
            Grant::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Grant::Password { .. } => GrantType::Password,
            Grant::RefreshToken { .. } => GrantType::RefreshToken,
        }
    }
}

impl Gateway {
    // ---- the token endpoint -----------------------------------------------------------

    /// Runs a grant for an authenticated client. Every token in the answer is committed
    /// before this returns.
    pub async fn grant(
        &self,
        client: &AuthenticatedClient,
        grant: Grant,
        origin: &Origin,
    ) -> Result<TokenResponse> {
        let client: &ClientRecord = &client.0;
        if !client.allows(grant.grant_type()) {
            return Err(Error::UnauthorizedClient(
                "the client may not use this grant type",
            ));
        }
        let tenant = self
            .directory
            .tenant_by_id(client.tenant_id)
            .ok_or(Error::InvalidClient)?;
        let now = now();
        let grant_type = grant.grant_type();
        // Only the single-use credentials need to say who spent them, and from where.
        let presenter = || Presenter {
            client,
            by: ChangedBy::from_address(Actor::client(&client.client_id), origin.address()),
        };
        let response = match grant {
            Grant::ClientCredentials { scope } => {
                let scope = allowed_scope(client, scope.as_deref())?;
                // RFC 6749 §4.4.3: no refresh token for client credentials.
                let issuance = Issuance::new_grant(&tenant, client, None, scope, false, now);
                self.issue(issuance, now).await
            }
            Grant::Password {
                username,
                password,
                scope,
            } => {
                let scope = allowed_scope(client, scope.as_deref())?;
                let sign_in = sign_in_name_in(&username, &tenant.domain);
                let user = self
                    .authenticate_user(&tenant, &sign_in, &password, origin)
                    .await?
                    .ok_or(Error::InvalidGrant("the username or password is wrong"))?;
                let username = Some(user.username.clone());
                let mut issuance = Issuance::new_grant(&tenant, client, username, scope, true, now);
                issuance.subject = Some(user.subject.clone());
                self.issue(issuance, now).await
            }
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => self
                .exchange_code(
                    &tenant,
                    &presenter(),
                    &code,
                    redirect_uri.as_deref(),
                    code_verifier.as_ref(),
                    now,
                )
                .await
                .map(|exchanged| exchanged.response),
            Grant::RefreshToken {
                refresh_token,
                scope,
            } => {
                self.refresh(&tenant, &presenter(), &refresh_token, scope.as_deref(), now)
                    .await
            }
        }?;
        self.metrics
            .issued(tenant.domain.as_str(), grant_type.as_str());
        Ok(response)
    }
}
