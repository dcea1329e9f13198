//! Every endpoint, matched in one place.
//!
//! | path (super tenant; tenants add `/t/{domain}` in front)      | methods   |
//! |--------------------------------------------------------------|-----------|
//! | `/oauth2/authorize`                                          | GET, POST |
//! | `/oauth2/token`                                              | POST      |
//! | `/oauth2/introspect`                                         | POST      |
//! | `/oauth2/revoke`                                             | POST      |
//! | `/oauth2/jwks`                                               | GET, HEAD |
//! | `/oauth2/userinfo`                                           | GET, POST |
//! | `/.well-known/openid-configuration`                          | GET, HEAD |
//! | `/.well-known/oauth-authorization-server` (also `…/t/{domain}` after it) | GET, HEAD |
//! | `/api/v1/…` (the admin API; its own table in `admin.rs`)      | per path  |
//! | `/console`, `/console/…` (the console; its table in `console/mod.rs`) | per path |
//! | `/healthz`, `/readyz` (no tenant)                            | GET, HEAD |

use super::request_log::RequestLog;
use super::{
    admin, authorize, body, console, health, introspect, jwks, logout, metadata, revoke, token,
    userinfo, ApiError, Body,
};
use crate::service::{Gateway, Origin};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION};
use hyper::{Request, Response, Version};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Authorize,
    Token,
    Introspect,
    Revoke,
    Jwks,
    Metadata,
    OpenIdConfiguration,
    Userinfo,
    Logout,
    Admin,
    Console,
    Healthz,
    Readyz,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Authorize => "authorize",
            Endpoint::Token => "token",
            Endpoint::Introspect => "introspect",
            Endpoint::Revoke => "revoke",
            Endpoint::Jwks => "jwks",
            Endpoint::Metadata => "metadata",
            Endpoint::OpenIdConfiguration => "openid_configuration",
            Endpoint::Userinfo => "userinfo",
            Endpoint::Logout => "logout",
            Endpoint::Admin => "admin",
            Endpoint::Console => "console",
            Endpoint::Healthz => "healthz",
            Endpoint::Readyz => "readyz",
        }
    }

    /// The methods the endpoint accepts, as an `Allow` header value; `None` when the
    /// endpoint decides per path (the admin API).
    fn allow(self) -> Option<&'static str> {
        match self {
            Endpoint::Authorize | Endpoint::Userinfo | Endpoint::Logout => Some("GET, POST"),
            Endpoint::Token | Endpoint::Introspect | Endpoint::Revoke => Some("POST"),
            Endpoint::Jwks
            | Endpoint::Metadata
            | Endpoint::OpenIdConfiguration
            | Endpoint::Healthz
            | Endpoint::Readyz => Some("GET, HEAD"),
            Endpoint::Admin | Endpoint::Console => None,
        }
    }
}

/// A request's path, split into the tenant it addresses and the endpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Route<'a> {
    /// `None` for the super tenant, or for endpoints outside any tenant.
    pub tenant: Option<&'a str>,
    pub endpoint: Endpoint,
    /// For the admin API: the path after `/api/v1/`; for the console, the path after
    /// `/console/`.
    pub rest: &'a str,
}

fn route(path: &str) -> Option<Route<'_>> {
    let only = |tenant, endpoint| {
        Some(Route {
            tenant,
            endpoint,
            rest: "",
        })
    };
    match path {
        "/healthz" => return only(None, Endpoint::Healthz),
        "/readyz" => return only(None, Endpoint::Readyz),
        _ => {}
    }
    // RFC 8414 §3.1 inserts the well-known segment before the issuer's path.
    if let Some(domain) = path.strip_prefix("/.well-known/oauth-authorization-server/t/") {
        return if domain.is_empty() || domain.contains('/') {
            None
        } else {
            only(Some(domain), Endpoint::Metadata)
        };
    }
    let (tenant, within) = match path.strip_prefix("/t/") {
        Some(after) => {
            let (domain, within) = after.split_at(after.find('/')?);
            if domain.is_empty() {
                return None;
            }
            (Some(domain), within)
        }
        None => (None, path),
    };
    match within {
        "/oauth2/authorize" => only(tenant, Endpoint::Authorize),
        "/oauth2/token" => only(tenant, Endpoint::Token),
        "/oauth2/introspect" => only(tenant, Endpoint::Introspect),
        "/oauth2/revoke" => only(tenant, Endpoint::Revoke),
        "/oauth2/jwks" => only(tenant, Endpoint::Jwks),
        "/.well-known/oauth-authorization-server" => only(tenant, Endpoint::Metadata),
        // OpenID Connect Discovery appends the well-known path to the issuer's.
        "/.well-known/openid-configuration" => only(tenant, Endpoint::OpenIdConfiguration),
        "/oauth2/userinfo" => only(tenant, Endpoint::Userinfo),
        "/oauth2/logout" => only(tenant, Endpoint::Logout),
        // `/console` alone is answered with a redirect to `/console/`.
        "/console" => Some(Route {
            tenant,
            endpoint: Endpoint::Console,
            rest: "/",
        }),
        _ => {
            if let Some(rest) = within.strip_prefix("/console/") {
                return Some(Route {
                    tenant,
                    endpoint: Endpoint::Console,
                    rest,
                });
            }
            within.strip_prefix("/api/v1/").map(|rest| Route {
                tenant,
                endpoint: Endpoint::Admin,
                rest,
            })
        }
    }
}

/// Handles one request and writes its log line.
pub async fn handle(
    gateway: Arc<Gateway>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let mut log = RequestLog::new(Origin::new(client_address(&gateway, &request, peer)));
    let (parts, incoming) = request.into_parts();
    let http1 = parts.version <= Version::HTTP_11;
    // Routed before the body is read, so that a body refused (413, 408) is counted and
    // logged under its endpoint. The URI's clone shares its bytes.
    let uri = parts.uri.clone();
    let routed = route(uri.path());
    if let Some(route) = &routed {
        log.name_endpoint(route.endpoint.name());
    }
    // The body is read before anything can answer (see `body`): an answer that left
    // it unread would drop the connection under the client's next request.
    let read = body::read(
        &parts.headers,
        incoming,
        gateway.body_limit(),
        gateway.body_timeout(),
    )
    .await;
    let whole = read.is_ok();
    let dispatched = match read {
        Ok(bytes) => {
            let request = Request::from_parts(parts, bytes);
            let span = log.span();
            dispatch(&gateway, &request, routed, &mut log)
                .instrument(span)
                .await
        }
        Err(error) => Err(error),
    };
    let mut response = dispatched.unwrap_or_else(|error| {
        let realm = match log.tenant_domain() {
            "" => gateway.super_tenant().as_str(),
            domain => domain,
        };
        error.into_response(realm)
    });
    // What is left of an unread body would be taken for the next request: say so,
    // and hyper closes the connection once the answer is out (HTTP/2 resets only the
    // stream, and has no `Connection` header).
    if !whole && http1 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    let took = started.elapsed();
    let status = response.status().as_u16();
    gateway.record_request(log.tenant_domain(), log.endpoint(), status, took);
    log.write(&method, status, took);
    response
}

async fn dispatch(
    gateway: &Gateway,
    request: &Request<Bytes>,
    routed: Option<Route<'_>>,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path();
    let route = routed.ok_or(ApiError::NotFound)?;
    if let Some(allow) = route.endpoint.allow() {
        let method = request.method();
        let allowed = allow.split(", ").any(|m| m == method.as_str());
        if !allowed {
            return Err(ApiError::MethodNotAllowed(allow.to_owned()));
        }
    }
    match route.endpoint {
        Endpoint::Healthz => return Ok(health::healthz()),
        Endpoint::Readyz => return Ok(health::readyz(gateway).await),
        Endpoint::Authorize
        | Endpoint::Token
        | Endpoint::Introspect
        | Endpoint::Revoke
        | Endpoint::Jwks
        | Endpoint::Metadata
        | Endpoint::OpenIdConfiguration
        | Endpoint::Userinfo
        | Endpoint::Logout
        | Endpoint::Admin
        | Endpoint::Console => {}
    }
    let tenant = gateway.tenant_for_request(route.tenant).await?;
    log.name_tenant(&tenant);
    match route.endpoint {
        // The tenant's budget is spent before authentication: a limited request costs
        // no hash (SPEC §9). The caller's own budget is checked once it is known.
        Endpoint::Token | Endpoint::Introspect | Endpoint::Revoke | Endpoint::Userinfo => {
            gateway.admit_request(&tenant)?;
        }
        Endpoint::Authorize
        | Endpoint::Logout
        | Endpoint::Jwks
        | Endpoint::Metadata
        | Endpoint::OpenIdConfiguration
        | Endpoint::Admin
        | Endpoint::Console => {}
        Endpoint::Healthz | Endpoint::Readyz => {}
    }
    match route.endpoint {
        Endpoint::Authorize => authorize::handle(gateway, &tenant, request, path, log).await,
        Endpoint::Token => token::handle(gateway, &tenant, request, log).await,
        Endpoint::Introspect => introspect::handle(gateway, &tenant, request, path, log).await,
        Endpoint::Revoke => revoke::handle(gateway, &tenant, request, log).await,
        Endpoint::Jwks => jwks::handle(gateway, &tenant).await,
        Endpoint::Metadata => Ok(metadata::handle(&tenant)),
        Endpoint::OpenIdConfiguration => Ok(metadata::openid_configuration(&tenant)),
        Endpoint::Userinfo => userinfo::handle(gateway, &tenant, request).await,
        Endpoint::Logout => logout::handle(gateway, &tenant, request, path, log).await,
        Endpoint::Admin => admin::handle(gateway, tenant, request, route.rest, path, log).await,
        Endpoint::Console => {
            // "/" marks `/console` itself, which no path after `/console/` can be.
            let rest = (route.rest != "/").then_some(route.rest);
            console::handle(gateway, &tenant, request, rest, log).await
        }
        Endpoint::Healthz | Endpoint::Readyz => Err(ApiError::NotFound),
    }
}

/// The caller's address: the peer, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
fn client_address(gateway: &Gateway, request: &Request<Incoming>, peer: SocketAddr) -> IpAddr {
    let trusted = gateway.trusted_proxies();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer.ip()) {
        return peer.ip();
    }
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str) -> Option<(Option<&str>, Endpoint)> {
        route(path).map(|r| (r.tenant, r.endpoint))
    }

    #[test]
    fn admin_paths_keep_their_rest() {
        let admin = route("/t/foo.com/api/v1/users/alice").unwrap();
        assert_eq!(
            (admin.tenant, admin.endpoint, admin.rest),
            (Some("foo.com"), Endpoint::Admin, "users/alice")
        );
        assert_eq!(route("/api/v1/tenants").unwrap().rest, "tenants");
        assert!(route("/api/v1").is_none());
        assert!(route("/api/v2/users").is_none());
    }

    #[test]
    fn super_tenant_and_tenant_paths_route() {
        assert_eq!(r("/oauth2/token"), Some((None, Endpoint::Token)));
        assert_eq!(
            r("/t/foo.com/oauth2/introspect"),
            Some((Some("foo.com"), Endpoint::Introspect))
        );
        assert_eq!(
            r("/t/foo.com/oauth2/revoke"),
            Some((Some("foo.com"), Endpoint::Revoke))
        );
        assert_eq!(
            r("/.well-known/oauth-authorization-server"),
            Some((None, Endpoint::Metadata))
        );
        assert_eq!(
            r("/t/foo.com/.well-known/oauth-authorization-server"),
            Some((Some("foo.com"), Endpoint::Metadata))
        );
        assert_eq!(
            r("/.well-known/oauth-authorization-server/t/foo.com"),
            Some((Some("foo.com"), Endpoint::Metadata))
        );
        assert_eq!(r("/healthz"), Some((None, Endpoint::Healthz)));
    }

    #[test]
    fn unknown_paths_do_not_route() {
        for path in [
            "/",
            "/oauth2/token/",
            "/t/",
            "/t//oauth2/token",
            "/t/foo.com",
            "/t/foo.com/healthz",
            "/oauth2/authorize/x",
            "/.well-known/oauth-authorization-server/t/",
            "/.well-known/oauth-authorization-server/t/a/b",
        ] {
            assert_eq!(r(path), None, "{path}");
        }
    }

    // Fuzzing of untrusted input: arbitrary bytes never panic. PROPTEST_CASES raises
    // the number of cases for a longer run (README, "Abuse resistance").
    proptest::proptest! {
        #[test]
        fn any_path_routes_or_does_not(path in "(/|t/|api/v1/|oauth2/|\\.well-known/|[a-z.%-]{0,8}){0,12}") {
            let path = format!("/{path}");
            if let Some(r) = route(&path) {
                if let Some(t) = r.tenant {
                    proptest::prop_assert!(!t.is_empty() && !t.contains('/'));
                }
            }
        }
    }
}
