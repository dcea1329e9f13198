//! The admin API under `/api/v1/` and `/t/{domain}/api/v1/` (SPEC §8). Every path is
//! matched here; the caller is authenticated and checked against the tenant's resource
//! rules before anything is read or changed.
//!
//! | path                         | methods            |
//! |------------------------------|--------------------|
//! | `users`                      | GET, POST          |
//! | `users/{u}`                  | GET, DELETE        |
//! | `users/{u}/password`         | PUT                |
//! | `users/{u}/roles`            | PUT                |
//! | `users/{u}/enabled`          | PUT                |
//! | `users/{u}/unlock`           | POST               |
//! | `roles`                      | GET, POST          |
//! | `roles/{name}`               | GET, PUT, DELETE   |
//! | `clients`                    | GET, POST          |
//! | `clients/{id}`               | GET, DELETE        |
//! | `clients/{id}/secret`        | POST               |
//! | `clients/{id}/unlock`        | POST               |
//! | `resources`                  | GET, PUT           |
//! | `tokens/lookup`, `tokens/revoke` | POST           |
//! | `tenants` (super tenant)     | GET, POST          |
//! | `tenants/{domain}` (super)   | DELETE             |
//! | `audit?limit=&before=`       | GET                |

use super::form::{has_media_type, read_body, Form};
use super::router::RequestLog;
use super::{auth, empty, json, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::admin::{path_segment, Admin};
use crate::service::authenticate::Presented;
use crate::service::Gateway;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::sync::Arc;

/// One admin operation's target, parsed from the path.
enum Target {
    Users,
    User(String),
    UserPassword(String),
    UserRoles(String),
    UserEnabled(String),
    UserUnlock(String),
    Roles,
    Role(String),
    Clients,
    Client(String),
    ClientSecret(String),
    ClientUnlock(String),
    Resources,
    TokensLookup,
    TokensRevoke,
    Tenants,
    Tenant(String),
    Audit,
}

impl Target {
    fn parse(rest: &str, is_super: bool) -> Result<Self, ApiError> {
        let segments: Vec<&str> = rest.split('/').collect();
        let name = |raw: &str| -> Result<String, ApiError> {
            if raw.is_empty() {
                return Err(ApiError::NotFound);
            }
            Ok(path_segment(raw)?)
        };
        Ok(match segments.as_slice() {
            ["users"] => Target::Users,
            ["users", u] => Target::User(name(u)?),
            ["users", u, "password"] => Target::UserPassword(name(u)?),
            ["users", u, "roles"] => Target::UserRoles(name(u)?),
            ["users", u, "enabled"] => Target::UserEnabled(name(u)?),
            ["users", u, "unlock"] => Target::UserUnlock(name(u)?),
            ["roles"] => Target::Roles,
            ["roles", r] => Target::Role(name(r)?),
            ["clients"] => Target::Clients,
            ["clients", c] => Target::Client(name(c)?),
            ["clients", c, "secret"] => Target::ClientSecret(name(c)?),
            ["clients", c, "unlock"] => Target::ClientUnlock(name(c)?),
            ["resources"] => Target::Resources,
            ["tokens", "lookup"] => Target::TokensLookup,
            ["tokens", "revoke"] => Target::TokensRevoke,
            // Tenants are managed from the super tenant only; elsewhere the path does
            // not exist.
            ["tenants"] if is_super => Target::Tenants,
            ["tenants", d] if is_super => Target::Tenant(name(d)?),
            ["audit"] => Target::Audit,
            _ => return Err(ApiError::NotFound),
        })
    }

    fn allow(&self) -> &'static str {
        match self {
            Target::Users | Target::Roles | Target::Clients | Target::Tenants => "GET, POST",
            Target::User(_) | Target::Client(_) => "GET, DELETE",
            Target::UserPassword(_) | Target::UserRoles(_) | Target::UserEnabled(_) => "PUT",
            Target::UserUnlock(_) | Target::ClientSecret(_) | Target::ClientUnlock(_) => "POST",
            Target::TokensLookup | Target::TokensRevoke => "POST",
            Target::Role(_) => "GET, PUT, DELETE",
            Target::Resources => "GET, PUT",
            Target::Tenant(_) => "DELETE",
            Target::Audit => "GET",
        }
    }
}

pub async fn handle(
    gateway: &Gateway,
    tenant: Arc<Tenant>,
    request: Request<Incoming>,
    rest: &str,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let target = Target::parse(rest, tenant.is_super)?;
    let method = request.method().clone();
    let allow = target.allow();
    if !allow.split(", ").any(|m| m == method.as_str()) {
        return Err(ApiError::MethodNotAllowed(allow));
    }
    let presented = match auth::parse(request.headers())? {
        auth::Authorization::Basic { name, secret } => Presented::Basic { name, secret },
        auth::Authorization::Bearer(token) => Presented::Bearer(token),
        auth::Authorization::None => Presented::Nothing,
    };
    let admin = gateway
        .authenticate_admin(tenant, presented, method.as_str(), path, log.origin.clone())
        .await?;
    log.caller = admin.name.clone();
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes())?;
    let body = RequestBody { gateway, request };
    execute(gateway, &admin, target, method, body, &query).await
}

/// The request body, read only by operations that take one.
struct RequestBody<'a> {
    gateway: &'a Gateway,
    request: Request<Incoming>,
}

impl RequestBody<'_> {
    async fn json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        if !has_media_type(&self.request, "application/json") {
            return Err(ApiError::BadRequest(
                "the body must be application/json".into(),
            ));
        }
        let bytes = read_body(
            self.request,
            self.gateway.body_limit(),
            self.gateway.body_timeout(),
        )
        .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
    }
}

async fn execute(
    gateway: &Gateway,
    admin: &Admin,
    target: Target,
    method: Method,
    body: RequestBody<'_>,
    query: &Form,
) -> Result<Response<Body>, ApiError> {
    let ok = |value: serde_json::Value| Ok(json(StatusCode::OK, &value));
    let created = |value: serde_json::Value| Ok(json(StatusCode::CREATED, &value));
    let done = || Ok(empty(StatusCode::NO_CONTENT));
    let g = gateway;
    match (target, method) {
        (Target::Users, Method::GET) => ok(json!({ "users": g.list_users(admin).await? })),
        (Target::Users, _) => created(json!(g.create_user(admin, body.json().await?).await?)),
        (Target::User(u), Method::GET) => ok(json!(g.get_user(admin, &u).await?)),
        (Target::User(u), _) => {
            g.delete_user(admin, &u).await?;
            done()
        }
        (Target::UserPassword(u), _) => {
            g.set_password(admin, &u, body.json().await?).await?;
            done()
        }
        (Target::UserRoles(u), _) => ok(json!(g.set_roles(admin, &u, body.json().await?).await?)),
        (Target::UserEnabled(u), _) => {
            ok(json!(g.set_enabled(admin, &u, body.json().await?).await?))
        }
        (Target::UserUnlock(u), _) => ok(json!(g.unlock_user(admin, &u).await?)),
        (Target::Roles, Method::GET) => ok(json!({ "roles": g.list_roles(admin).await? })),
        (Target::Roles, _) => created(json!(g.create_role(admin, body.json().await?).await?)),
        (Target::Role(r), Method::GET) => ok(json!(g.get_role(admin, &r).await?)),
        (Target::Role(r), Method::PUT) => {
            ok(json!(g.update_role(admin, &r, body.json().await?).await?))
        }
        (Target::Role(r), _) => {
            g.delete_role(admin, &r).await?;
            done()
        }
        (Target::Clients, Method::GET) => ok(json!({ "clients": g.list_clients(admin).await? })),
        (Target::Clients, _) => created(json!(g.create_client(admin, body.json().await?).await?)),
        (Target::Client(c), Method::GET) => ok(json!(g.get_client(admin, &c).await?)),
        (Target::Client(c), _) => {
            g.delete_client(admin, &c).await?;
            done()
        }
        (Target::ClientSecret(c), _) => ok(json!(g.rotate_secret(admin, &c).await?)),
        (Target::ClientUnlock(c), _) => ok(json!(g.unlock_client(admin, &c).await?)),
        (Target::Resources, Method::GET) => ok(json!(g.get_resources(admin))),
        (Target::Resources, _) => ok(json!(g.set_resources(admin, body.json().await?).await?)),
        (Target::TokensLookup, _) => ok(json!(g.lookup_token(admin, body.json().await?).await?)),
        (Target::TokensRevoke, _) => {
            ok(json!({ "revoked": g.revoke_tokens(admin, body.json().await?).await? }))
        }
        (Target::Tenants, Method::GET) => ok(json!({ "tenants": g.list_tenants().await? })),
        (Target::Tenants, _) => created(json!(g.create_tenant(admin, body.json().await?).await?)),
        (Target::Tenant(d), _) => {
            g.delete_tenant(admin, &d).await?;
            done()
        }
        (Target::Audit, _) => ok(
            json!({ "events": g.audit_log(admin, query.get("limit"), query.get("before")).await? }),
        ),
    }
}
