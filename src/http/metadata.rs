//! RFC 8414 authorization server metadata, and OpenID Connect Discovery 1.0's
//! configuration of the same tenant. The issuer comes from `server.public_url`, never
//! from the `Host` header, and every list says exactly what the endpoints accept.

use super::{json, Body};
use crate::domain::client::GrantType;
use crate::domain::openid::{CLAIMS, SCOPES};
use crate::domain::tenant::Tenant;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

pub(super) fn handle(tenant: &Tenant) -> Response<Body> {
    json(StatusCode::OK, &authorization_server(tenant))
}

/// The RFC 8414 document.
fn authorization_server(tenant: &Tenant) -> Value {
    let issuer = &tenant.issuer;
    let client_auth = ["client_secret_basic", "client_secret_post"];
    json!({
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
    })
}

/// `{issuer}/.well-known/openid-configuration` (Discovery §4): the RFC 8414 document,
/// with what an OpenID provider adds.
pub(super) fn openid_configuration(tenant: &Tenant) -> Response<Body> {
    let mut document = authorization_server(tenant);
    let openid = json!({
        "userinfo_endpoint": format!("{}/oauth2/userinfo", tenant.issuer),
        // RP-Initiated Logout 1.0 §2.1.
        "end_session_endpoint": format!("{}/oauth2/logout", tenant.issuer),
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "scopes_supported": SCOPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": CLAIMS,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    if let (Value::Object(document), Value::Object(openid)) = (&mut document, openid) {
        document.extend(openid);
    }
    json(StatusCode::OK, &document)
}
