//! `POST /oauth2/introspect` (RFC 7662), answered as a signed JWT when the caller
//! asks for one (RFC 9701).

use super::router::RequestLog;
use super::{auth, form, json, uncached, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::{Error, Gateway};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, VARY};
use hyper::{HeaderMap, Request, Response, StatusCode};

const JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

pub async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: Request<Incoming>,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let method = request.method().as_str().to_owned();
    let signed = accepts_jwt(request.headers());
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
    let mut response = if signed {
        let jwt = gateway
            .sign_introspection(tenant, introspector.caller(), &answer)
            .await?;
        uncached(StatusCode::OK, JWT_MEDIA_TYPE, Bytes::from(jwt))
    } else {
        json(StatusCode::OK, &answer)
    };
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("accept"));
    Ok(response)
}

/// Whether `Accept` names the signed answer's media type with a non-zero weight
/// (RFC 9701 §4). Wildcards do not ask for it: only a caller that names it gets one.
fn accepts_jwt(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media_type.eq_ignore_ascii_case(JWT_MEDIA_TYPE) && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        accepts_jwt(&headers)
    }

    #[test]
    fn only_a_caller_naming_the_jwt_type_gets_one() {
        assert!(accept(&["application/token-introspection+jwt"]));
        assert!(accept(&["Application/Token-Introspection+JWT"]));
        assert!(accept(&[
            "application/json;q=0.5, application/token-introspection+jwt"
        ]));
        assert!(accept(&[
            "application/json",
            "application/token-introspection+jwt; q=0.9"
        ]));
        assert!(!accept(&[]));
        assert!(!accept(&["application/json"]));
        assert!(!accept(&["*/*"]));
        assert!(!accept(&["application/jwt"]));
        assert!(!accept(&["application/token-introspection+jwt;q=0"]));
        assert!(!accept(&[
            "application/token-introspection+jwt; q=0.0, application/json"
        ]));
    }
}
