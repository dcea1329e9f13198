//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an application sends
//! the browser to the `end_session_endpoint` to end its single sign-on session there.
//!
//! A request is checked before anything ends: an `id_token_hint` must be an ID token
//! this tenant signed (an expired one is fine, §2), and a `post_logout_redirect_uri`
//! must be one of the redirect URIs registered for the client the hint or `client_id`
//! names. A hint that names the browser's session ends it at once; otherwise the user
//! is asked first, so that no other site can sign anyone out with a link.

use super::authorize::{with_query, Refused};
use super::console::console_client;
use super::session::SignInSession;
use super::Gateway;
use crate::domain::client::redirect_uri_matches;
use crate::domain::console::CONSOLE_CLIENT_ID;
use crate::domain::tenant::Tenant;
use crate::store::ClientRecord;
use std::sync::Arc;

/// The parameters of a logout request as sent (query or form).
#[derive(Debug, Default, Clone)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// A logout request that passed every check.
#[derive(Debug)]
pub struct LogoutRequest {
    /// The session the hint's ID token was issued in, when a hint came.
    hinted_sid: Option<String>,
    /// The application that asked, when the request names one.
    pub client_id: Option<String>,
    /// Where the browser goes once signed out, with `state`: a registered URI.
    pub return_to: Option<String>,
}

impl LogoutRequest {
    /// Whether the request's hint names `session`, which may then end without asking.
    pub fn names(&self, session: &SignInSession) -> bool {
        self.hinted_sid.as_deref() == Some(session.signed_in.sid.as_str())
    }
}

impl Gateway {
    /// Checks a logout request at `tenant`'s endpoint. Every refusal is an error page:
    /// the browser is sent nowhere that was not checked.
    pub async fn logout_request(
        &self,
        tenant: &Tenant,
        params: &LogoutParams,
    ) -> Result<LogoutRequest, Refused> {
        let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let hint = match given(&params.id_token_hint) {
            Some(hint) => Some(self.id_token_hint(tenant, &hint).await?.ok_or_else(|| {
                Refused::Page("The id_token_hint is not an ID token of this tenant.".into())
            })?),
            None => None,
        };
        let client_id = match (given(&params.client_id), &hint) {
            (Some(client_id), Some(hint)) if client_id != hint.aud => {
                return Err(Refused::Page(
                    "client_id is not the application the id_token_hint was issued to.".into(),
                ))
            }
            (Some(client_id), _) => Some(client_id),
            (None, hint) => hint.as_ref().map(|h| h.aud.clone()),
        };
        let return_to = match given(&params.post_logout_redirect_uri) {
            None => None,
            Some(uri) => {
                let client_id = client_id.as_deref().ok_or_else(|| {
                    Refused::Page(
                        "post_logout_redirect_uri needs an id_token_hint or a client_id.".into(),
                    )
                })?;
                let client = self.logout_client(tenant, client_id).await?;
                if !client
                    .redirect_uris
                    .iter()
                    .any(|registered| redirect_uri_matches(registered, &uri))
                {
                    return Err(Refused::Page(
                        "The post_logout_redirect_uri is not registered for this application."
                            .into(),
                    ));
                }
                let state = given(&params.state);
                let pairs: Vec<(&str, &str)> =
                    state.iter().map(|s| ("state", s.as_str())).collect();
                Some(with_query(&uri, &pairs))
            }
        };
        Ok(LogoutRequest {
            hinted_sid: hint.and_then(|h| h.sid),
            client_id,
            return_to,
        })
    }

    /// The tenant's client `client_id`, the console's included.
    async fn logout_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
    ) -> Result<Arc<ClientRecord>, Refused> {
        if client_id == CONSOLE_CLIENT_ID {
            return Ok(Arc::new(console_client(tenant)));
        }
        self.directory
            .client(&*self.store, client_id)
            .await?
            .filter(|c| c.tenant_id == tenant.id)
            .ok_or_else(|| Refused::Page("The application is not known here.".into()))
    }
}
