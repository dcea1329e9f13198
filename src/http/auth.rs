//! The `Authorization` header: Basic and Bearer, parsed strictly. Nothing here is ever
//! logged or echoed.

use super::form::{self, percent_decode, Form};
use super::request_log::RequestLog;
use super::ApiError;
use crate::domain::client::is_client_id;
use crate::domain::tenant::Tenant;
use crate::service::authenticate::{
    AuthenticatedClient, BasicClient, ClientCredentials, ClientScope, Introspector, Presented,
};
use crate::service::{Caller, Error, Gateway, Origin};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use hyper::Request;
use secrecy::{ExposeSecret, SecretString};

/// What the header carried.
pub(super) enum Authorization {
    None,
    Basic { name: String, secret: SecretString },
    Bearer(SecretString),
}

pub(super) fn parse(headers: &HeaderMap) -> Result<Authorization, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Authorization::None);
    };
    if values.next().is_some() {
        return Err(malformed("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| malformed("the Authorization header is not ASCII"))?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or_else(|| malformed("the Authorization header has no credentials"))?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .map_err(|_| malformed("the Basic credentials are not base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| malformed("the Basic credentials are not UTF-8"))?;
        let (name, secret) = decoded
            .split_once(':')
            .ok_or_else(|| malformed("the Basic credentials have no ':'"))?;
        if name.is_empty() {
            return Err(malformed("the Basic credentials have an empty name"));
        }
        Ok(Authorization::Basic {
            name: name.to_owned(),
            secret: SecretString::from(secret.to_owned()),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(malformed("the Bearer token is empty"));
        }
        Ok(Authorization::Bearer(SecretString::from(rest.to_owned())))
    } else {
        Err(malformed(
            "the Authorization scheme must be Basic or Bearer",
        ))
    }
}

fn malformed(why: &str) -> ApiError {
    ApiError::BadRequest(why.to_owned())
}

/// Client credentials by `client_secret_basic` (percent-decoded, RFC 6749 §2.3.1) or
/// `client_secret_post`, or a public client's bare `client_id`. Using both methods at
/// once is an error (RFC 6749 §2.3).
pub(super) fn client_credentials(
    authorization: Authorization,
    form: &mut Form,
) -> Result<Option<ClientCredentials>, ApiError> {
    let posted_id = form.take("client_id");
    let posted_secret = form.take("client_secret").map(SecretString::from);
    match authorization {
        Authorization::Basic { name, secret } => {
            if posted_secret.is_some() {
                return Err(malformed("use one client authentication method, not two"));
            }
            let client_id = percent_decode(&name)
                .ok_or_else(|| malformed("the client id is not valid percent-encoding"))?;
            let secret = percent_decode(secret.expose_secret())
                .ok_or_else(|| malformed("the client secret is not valid percent-encoding"))?;
            if posted_id.as_ref().is_some_and(|id| *id != client_id) {
                return Err(malformed("client_id differs from the authenticated client"));
            }
            Ok(Some(ClientCredentials {
                client_id,
                secret: Some(SecretString::from(secret)),
            }))
        }
        Authorization::Bearer(_) => Err(malformed(
            "clients authenticate with Basic or client_secret_post",
        )),
        Authorization::None => Ok(posted_id.map(|client_id| ClientCredentials {
            client_id,
            secret: posted_secret,
        })),
    }
}

/// Reads the form of a token or revocation request and authenticates its client. The
/// super tenant's endpoints accept a client of any tenant (SPEC §6). `allow_public`
/// says, from the form, whether a public client's bare `client_id` is enough.
async fn client_request(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    allow_public: fn(&Form) -> bool,
    origin: &Origin,
) -> Result<(AuthenticatedClient, Form), ApiError> {
    let authorization = parse(request.headers())?;
    let mut form = form::of(request)?;
    let credentials = client_credentials(authorization, &mut form)?.ok_or(Error::InvalidClient)?;
    let scope = if tenant.is_super {
        ClientScope::AnyTenant
    } else {
        ClientScope::ThisTenant
    };
    let client = gateway
        .authenticate_client(tenant, &credentials, scope, allow_public(&form), origin)
        .await?;
    Ok((client, form))
}

/// Authenticates the client of a token or revocation request, names it in the request
/// log, and spends one request of its budget: the one door of both endpoints. A public
/// client gets in by its id alone where `allow_public` says so.
pub(super) async fn admitted_client(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    allow_public: fn(&Form) -> bool,
    log: &mut RequestLog,
) -> Result<(AuthenticatedClient, Form), ApiError> {
    let (client, form) =
        client_request(gateway, tenant, request, allow_public, &log.origin).await?;
    admit(gateway, tenant, &client, log)?;
    Ok((client, form))
}

/// The same door at the introspection endpoint, where users, clients and Bearer
/// callers may all come in, as `path`'s resource rule allows.
pub(super) async fn admitted_introspector(
    gateway: &Gateway,
    tenant: &Tenant,
    request: &Request<Bytes>,
    path: &str,
    log: &mut RequestLog,
) -> Result<(Introspector, Form), ApiError> {
    let authorization = parse(request.headers())?;
    let mut form = form::of(request)?;
    let caller = introspection_caller(authorization, &mut form)?;
    let method = request.method().as_str();
    let introspector = gateway
        .introspector(tenant, caller, method, path, &log.origin)
        .await?;
    admit(gateway, tenant, &introspector, log)?;
    Ok((introspector, form))
}

/// Names the caller in the request log, then spends its budget, so that a request
/// refused for its budget still says whose it was.
fn admit(
    gateway: &Gateway,
    tenant: &Tenant,
    caller: &impl Caller,
    log: &mut RequestLog,
) -> Result<(), ApiError> {
    log.identify(caller.name());
    Ok(gateway.admit(caller, tenant)?)
}

/// A Basic pair read as client credentials, when its name decodes to a client id.
fn as_client(name: &str, secret: &SecretString) -> Option<BasicClient> {
    let client_id = percent_decode(name).filter(|id| is_client_id(id))?;
    let secret = percent_decode(secret.expose_secret()).map(SecretString::from);
    Some(BasicClient { client_id, secret })
}

/// The introspection caller: a Basic user or client, a Bearer token, or a client by
/// `client_secret_post`.
fn introspection_caller(
    authorization: Authorization,
    form: &mut Form,
) -> Result<Presented, ApiError> {
    Ok(match authorization {
        Authorization::Basic { name, secret } => {
            let as_client = as_client(&name, &secret);
            Presented::Basic {
                name,
                secret,
                as_client,
            }
        }
        Authorization::Bearer(token) => Presented::Bearer(token),
        Authorization::None => match client_credentials(Authorization::None, form)? {
            Some(c) if c.secret.is_some() => Presented::ClientPost(c),
            Some(_) | None => Presented::Nothing,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn basic_splits_at_the_first_colon() {
        let v = format!("Basic {}", STANDARD.encode("admin@foo.com:pa:ss"));
        match parse(&headers(&v)).unwrap() {
            Authorization::Basic { name, secret } => {
                assert_eq!(name, "admin@foo.com");
                assert_eq!(secret.expose_secret(), "pa:ss");
            }
            _ => panic!("not basic"),
        }
    }

    #[test]
    fn malformed_headers_are_bad_requests() {
        for v in [
            "Basic !!!",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
            "Bearer ",
            "Digest x",
        ] {
            assert!(
                matches!(parse(&headers(v)), Err(ApiError::BadRequest(_))),
                "{v}"
            );
        }
    }

    #[test]
    fn client_credentials_are_percent_decoded_and_exclusive() {
        let mut form = Form::parse(b"grant_type=x").unwrap();
        let auth = Authorization::Basic {
            name: "my%5Fclient".into(),
            secret: SecretString::from("s%2Bt+u".to_owned()),
        };
        let c = client_credentials(auth, &mut form).unwrap().unwrap();
        assert_eq!(c.client_id, "my_client");
        assert_eq!(c.secret.unwrap().expose_secret(), "s+t+u");

        let mut form = Form::parse(b"client_secret=x").unwrap();
        let auth = Authorization::Basic {
            name: "c".into(),
            secret: SecretString::from("s".to_owned()),
        };
        assert!(client_credentials(auth, &mut form).is_err());
    }

    // Fuzzing of untrusted input: arbitrary bytes never panic. PROPTEST_CASES raises
    // the number of cases for a longer run (README, "Abuse resistance").
    proptest::proptest! {
        #[test]
        fn any_authorization_header_parses_or_is_a_bad_request(value in "[ -~]{0,300}") {
            if let Ok(v) = HeaderValue::from_str(&value) {
                let mut h = HeaderMap::new();
                h.insert(AUTHORIZATION, v);
                let _ = parse(&h);
            }
        }

        #[test]
        fn any_basic_payload_parses_or_is_a_bad_request(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse(&headers(&format!("Basic {}", STANDARD.encode(payload))));
        }
    }
}
