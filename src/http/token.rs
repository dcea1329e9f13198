//! `POST /oauth2/token` (RFC 6749 §3.2).

use super::router::RequestLog;
use super::{auth, form, json, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::oauth::{ClientScope, Grant};
use crate::service::{Error, Gateway};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use secrecy::SecretString;

pub async fn handle(gateway: &Gateway, tenant: &Tenant, request: Request<Incoming>, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    let authorization = auth::parse(request.headers())?;
    let mut form = form::read(request, gateway.body_limit(), gateway.body_timeout()).await?;
    let credentials = auth::client_credentials(authorization, &mut form)?.ok_or(Error::InvalidClient)?;
    let scope = if tenant.is_super { ClientScope::AnyTenant } else { ClientScope::ThisTenant };
    let client = gateway.authenticate_client(tenant, &credentials, scope, false).await?;
    log.caller = client.client_id.clone();
    let required = |name: &str| {
        form.non_empty(name).map(str::to_owned).ok_or_else(|| Error::InvalidRequest(format!("{name} is required")))
    };
    let scope = form.get("scope").map(str::to_owned);
    let grant = match form.non_empty("grant_type") {
        None => return Err(Error::InvalidRequest("grant_type is required".into()).into()),
        Some("client_credentials") => Grant::ClientCredentials { scope },
        Some("password") => Grant::Password {
            username: required("username")?,
            password: SecretString::from(required("password")?),
            scope,
        },
        Some("refresh_token") => Grant::RefreshToken { refresh_token: SecretString::from(required("refresh_token")?), scope },
        Some(_) => return Err(Error::UnsupportedGrantType.into()),
    };
    let issued = gateway.grant(&client, grant).await?;
    Ok(json(StatusCode::OK, &issued))
}
