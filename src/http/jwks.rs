//! `GET /oauth2/jwks`: the tenant's public signing keys as a JWK Set (RFC 7517 §5).
//! Anyone may read it; a verifier that meets an unknown `kid` fetches it again.

use super::{cacheable, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::Gateway;
use hyper::Response;

/// Short, because a rotation's new key signs at once: a verifier's copy is at most
/// this old when it meets the new `kid` and fetches again.
const MAX_AGE: &str = "public, max-age=60";

pub(super) async fn handle(gateway: &Gateway, tenant: &Tenant) -> Result<Response<Body>, ApiError> {
    let keys = gateway.tenant_keys(tenant).await?;
    Ok(cacheable("application/json", keys.jwks.clone(), MAX_AGE))
}
