//! `POST /oauth2/token` (RFC 6749 §3.2).

use super::router::RequestLog;
use super::{auth, json, ApiError, Body};
use crate::domain::client::GrantType;
use crate::domain::tenant::Tenant;
use crate::service::grant::Grant;
use crate::service::{Error, Gateway};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use secrecy::SecretString;

pub async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    // A public client authenticates by its id alone, and only to exchange a code (its
    // PKCE verifier is then the proof).
    let is_code_exchange = |form: &super::form::Form| {
        form.get("grant_type").and_then(GrantType::parse) == Some(GrantType::AuthorizationCode)
    };
    let (client, form) =
        auth::client_request(gateway, tenant, request, is_code_exchange, &log.origin).await?;
    log.identify(client.id());
    gateway.admit_caller(client.tenant_id(), client.id())?;
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
    let issued = gateway.grant(&client, grant, &log.origin).await?;
    Ok(json(StatusCode::OK, &issued))
}
