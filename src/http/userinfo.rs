//! `GET` and `POST /oauth2/userinfo` (OpenID Connect Core §5.3): who the user behind
//! a Bearer access token is, as far as the token's scope lets its client learn. The
//! token comes in the `Authorization` header, or for a POST in the form's
//! `access_token` (RFC 6750 §2.2), never both.

use super::auth::{self, Authorization};
use super::form::{has_media_type, Form};
use super::{json, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::openid::UserinfoRefusal;
use crate::service::Gateway;
use bytes::Bytes;
use hyper::header::{HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use secrecy::SecretString;
use serde_json::json;

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
) -> Result<Response<Body>, ApiError> {
    let in_header = match auth::parse(request.headers())? {
        Authorization::Bearer(token) => Some(token),
        Authorization::None => None,
        Authorization::Basic { .. } => {
            return Ok(challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_request", "send the access token as a Bearer token")),
            ))
        }
    };
    let in_form = if request.method() == Method::POST
        && has_media_type(request, "application/x-www-form-urlencoded")
    {
        Form::parse(request.body())?
            .get("access_token")
            .map(|t| SecretString::from(t.to_owned()))
    } else {
        None
    };
    let token = match (in_header, in_form) {
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return Ok(challenge(StatusCode::UNAUTHORIZED, None)),
        (Some(_), Some(_)) => {
            return Ok(challenge(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", "send the access token one way only")),
            ))
        }
    };
    match gateway.userinfo(tenant, &token).await {
        Ok(identity) => Ok(json(StatusCode::OK, &identity)),
        Err(UserinfoRefusal::InvalidToken) => Ok(challenge(
            StatusCode::UNAUTHORIZED,
            Some(("invalid_token", "the access token is not active here")),
        )),
        Err(UserinfoRefusal::InsufficientScope) => Ok(challenge(
            StatusCode::FORBIDDEN,
            Some((
                "insufficient_scope",
                "the access token was not issued with openid",
            )),
        )),
        Err(UserinfoRefusal::Failed(e)) => Err(e.into()),
    }
}

/// A refusal with its `WWW-Authenticate: Bearer` challenge (RFC 6750 §3): with no
/// error code when no token was sent at all.
fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> Response<Body> {
    let (header, body) = match error {
        Some((code, description)) => {
            let mut header =
                format!("Bearer error=\"{code}\", error_description=\"{description}\"");
            if code == "insufficient_scope" {
                header.push_str(", scope=\"openid\"");
            }
            let body = json!({"error": code, "error_description": description});
            (header, body)
        }
        None => (
            "Bearer".to_owned(),
            json!({"error": "invalid_request", "error_description": "no access token was sent"}),
        ),
    };
    let mut response = json(status, &body);
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}
