//! `POST /oauth2/introspect` (RFC 7662), answered as a signed JWT when the caller
//! asks for one (RFC 9701).

use super::request_log::RequestLog;
use super::{auth, json, uncached, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::{Error, Gateway};
use bytes::Bytes;
use hyper::header::{HeaderValue, VARY};
use hyper::{HeaderMap, Request, Response, StatusCode};

const JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let signed = accepts_jwt(request.headers());
    let (introspector, form) =
        auth::admitted_introspector(gateway, tenant, request, path, log).await?;
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

/// Whether the caller asks for a signed answer (RFC 9701 §4). Wildcards do not ask
/// for it: only a caller that names it gets one.
fn accepts_jwt(headers: &HeaderMap) -> bool {
    super::accepts(headers, JWT_MEDIA_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::ACCEPT;

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
