//! `POST /oauth2/introspect` (RFC 7662).

use super::router::RequestLog;
use super::{auth, form, json, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::{Error, Gateway};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

pub async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: Request<Incoming>,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let method = request.method().as_str().to_owned();
    let authorization = auth::parse(request.headers())?;
    let mut form = form::read(request, gateway.body_limit(), gateway.body_timeout()).await?;
    let caller = auth::introspection_caller(authorization, &mut form)?;
    let introspector = gateway
        .introspector(tenant, caller, &method, path, &log.origin)
        .await?;
    log.identify(introspector.caller());
    gateway.admit_caller(tenant.id, introspector.caller())?;
    // `token_type_hint` is accepted and ignored: one digest index finds either kind, so
    // a hint could only ever change the answer, never speed it up (RFC 7662 §2.1).
    let token = form
        .non_empty("token")
        .ok_or_else(|| Error::InvalidRequest("token is required".into()))?;
    let answer = gateway.introspect(tenant, &introspector, token).await?;
    Ok(json(StatusCode::OK, &answer))
}
