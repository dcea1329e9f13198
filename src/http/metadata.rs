//! RFC 8414 authorization server metadata. The issuer comes from `server.public_url`,
//! never from the `Host` header, and every list says exactly what the endpoints accept.

use super::{json, Body};
use crate::domain::client::GrantType;
use crate::domain::tenant::Tenant;
use hyper::{Response, StatusCode};
use serde_json::json;

pub(super) fn handle(tenant: &Tenant) -> Response<Body> {
    let issuer = &tenant.issuer;
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
        // "none": a public client exchanging a code with PKCE.
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        // RFC 9701: answers signed when asked for with Accept: application/token-introspection+jwt.
        "introspection_signing_alg_values_supported": ["ES256"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    });
    json(StatusCode::OK, &document)
}
