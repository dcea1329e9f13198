//! `POST /oauth2/revoke` (RFC 7009).

use super::request_log::RequestLog;
use super::{auth, empty, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::{Error, Gateway};
use bytes::Bytes;
use hyper::{Request, Response, StatusCode};

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    // RFC 7009 §2.1: a public client identifies itself by its id alone.
    let (client, form) = auth::admitted_client(gateway, tenant, request, |_| true, log).await?;
    let token = form
        .non_empty("token")
        .ok_or_else(|| Error::InvalidRequest("token is required".into()))?;
    gateway.revoke(&client, token, &log.origin).await?;
    // 200 with an empty body: clients treat 204 as an error (SPEC §6).
    Ok(empty(StatusCode::OK))
}
