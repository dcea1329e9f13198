//! RFC 8414 authorization server metadata. The issuer comes from `server.public_url`,
//! never from the `Host` header, and every list says exactly what the endpoints accept.

use super::{json, Body};
use crate::domain::tenant::Tenant;
use hyper::{Response, StatusCode};
use serde_json::json;

pub fn handle(tenant: &Tenant) -> Response<Body> {
    let issuer = &tenant.issuer;
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let document = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        // The authorization endpoint is not served yet, so no response type is.
        "response_types_supported": [],
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
        "token_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    });
    json(StatusCode::OK, &document)
}
