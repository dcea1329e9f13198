//! `POST /oauth2/token` (RFC 6749 §3.2).

use super::form::{self, Form};
use super::request_log::RequestLog;
use super::{auth, json, ApiError, Body};
use crate::domain::client::GrantType;
use crate::domain::tenant::Tenant;
use crate::service::authenticate::AuthenticatedClient;
use crate::service::grant::Grant;
use crate::service::{Error, Gateway};
use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use secrecy::SecretString;

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let mut presenter = None;
    let answered = authenticated_grant(gateway, tenant, request, log, &mut presenter).await;
    if let Err(ApiError::Service(refusal)) = &answered {
        // The code of a refused exchange may be in the wrong hands: the service
        // decides, and spends it if so.
        let code = form::of(request)
            .ok()
            .filter(is_code_exchange)
            .and_then(|mut f| f.take("code"));
        if let Some(code) = code {
            // The caller gets its refusal either way. A store that cannot spend the
            // code now cannot exchange it either, and a code lives minutes.
            let origin = &log.origin;
            let spent = gateway.refused_code_exchange(&code, presenter.as_ref(), refusal, origin);
            if let Err(e) = spent.await {
                tracing::warn!(error = %e, "could not spend a code presented by another client");
            }
        }
    }
    answered
}

/// A public client authenticates by its id alone, and only to exchange a code (its
/// PKCE verifier is then the proof).
fn is_code_exchange(form: &Form) -> bool {
    form.get("grant_type").and_then(GrantType::parse) == Some(GrantType::AuthorizationCode)
}

/// Authenticates the client (kept in `presenter`) and runs its grant.
async fn authenticated_grant(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    log: &mut RequestLog,
    presenter: &mut Option<AuthenticatedClient>,
) -> Result<Response<Body>, ApiError> {
    let (client, form) =
        auth::admitted_client(gateway, tenant, request, is_code_exchange, log).await?;
    let client = presenter.insert(client);
    let required = |name: &str| {
        form.non_empty(name)
            .map(str::to_owned)
            .ok_or_else(|| Error::InvalidRequest(format!("{name} is required")))
    };
    let scope = form.get("scope").map(str::to_owned);
    let grant_type = match form.non_empty("grant_type") {
        None => return Err(Error::InvalidRequest("grant_type is required".into()).into()),
        Some(name) => GrantType::parse(name).ok_or(Error::UnsupportedGrantType)?,
    };
    let grant = match grant_type {
        GrantType::ClientCredentials => Grant::ClientCredentials { scope },
        GrantType::AuthorizationCode => Grant::AuthorizationCode {
            code: SecretString::from(required("code")?),
            redirect_uri: form.non_empty("redirect_uri").map(str::to_owned),
            code_verifier: form
                .non_empty("code_verifier")
                .map(|v| SecretString::from(v.to_owned())),
        },
        GrantType::Password => Grant::Password {
            username: required("username")?,
            password: SecretString::from(required("password")?),
            scope,
        },
        GrantType::RefreshToken => Grant::RefreshToken {
            refresh_token: SecretString::from(required("refresh_token")?),
            scope,
        },
    };
    let issued = gateway.grant(client, grant, &log.origin).await?;
    Ok(json(StatusCode::OK, &issued))
}
