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
//! | `clients/{id}`               | GET, PATCH, DELETE |
//! | `clients/{id}/secret`        | POST               |
//! | `clients/{id}/unlock`        | POST               |
//! | `resources`                  | GET, PUT           |
//! | `settings`                   | GET, PUT           |
//! | `tokens/lookup`, `tokens/revoke` | POST           |
//! | `keys`                       | GET                |
//! | `keys/rotate`                | POST               |
//! | `tenants` (super tenant)     | GET, POST          |
//! | `tenants/{domain}` (super)   | DELETE             |
//! | `audit?limit=&before=`       | GET                |

use super::form::{has_media_type, percent_decode, Form};
use super::request_log::RequestLog;
use super::{auth, empty, json, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::admin::Admin;
use crate::service::authenticate::Presented;
use crate::service::{Error, Gateway};
use bytes::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::sync::Arc;

/// One admin operation: a path and a method, with the names the path carries.
enum Operation {
    ListUsers,
    CreateUser,
    GetUser(String),
    DeleteUser(String),
    SetPassword(String),
    SetRoles(String),
    SetEnabled(String),
    UnlockUser(String),
    ListRoles,
    CreateRole,
    GetRole(String),
    UpdateRole(String),
    DeleteRole(String),
    ListClients,
    CreateClient,
    GetClient(String),
    EditClient(String),
    DeleteClient(String),
    RotateSecret(String),
    UnlockClient(String),
    GetResources,
    SetResources,
    GetSettings,
    SetSettings,
    LookupToken,
    RevokeTokens,
    ListKeys,
    RotateKey,
    ListTenants,
    CreateTenant,
    DeactivateTenant(String),
    AuditLog,
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

impl Operation {
    /// The table of the module doc: the operation `method` on `rest` names, `None` when
    /// the pair is not in it. `Allow` is derived from this same table.
    fn find(rest: &str, method: &Method, is_super: bool) -> Result<Option<Self>, ApiError> {
        use Method as M;
        let segments: Vec<&str> = rest.split('/').collect();
        let name = |raw: &str| -> Result<String, ApiError> {
            if raw.is_empty() {
                return Err(ApiError::NotFound);
            }
            percent_decode(raw).ok_or_else(|| {
                ApiError::from(Error::Invalid {
                    field: "path".into(),
                    message: "not valid percent-encoded UTF-8".into(),
                })
            })
        };
        let m = method.clone();
        Ok(Some(match (segments.as_slice(), m) {
            (["users"], M::GET) => Operation::ListUsers,
            (["users"], M::POST) => Operation::CreateUser,
            (["users", u], M::GET) => Operation::GetUser(name(u)?),
            (["users", u], M::DELETE) => Operation::DeleteUser(name(u)?),
            (["users", u, "password"], M::PUT) => Operation::SetPassword(name(u)?),
            (["users", u, "roles"], M::PUT) => Operation::SetRoles(name(u)?),
            (["users", u, "enabled"], M::PUT) => Operation::SetEnabled(name(u)?),
            (["users", u, "unlock"], M::POST) => Operation::UnlockUser(name(u)?),
            (["roles"], M::GET) => Operation::ListRoles,
            (["roles"], M::POST) => Operation::CreateRole,
            (["roles", r], M::GET) => Operation::GetRole(name(r)?),
            (["roles", r], M::PUT) => Operation::UpdateRole(name(r)?),
            (["roles", r], M::DELETE) => Operation::DeleteRole(name(r)?),
            (["clients"], M::GET) => Operation::ListClients,
            (["clients"], M::POST) => Operation::CreateClient,
            (["clients", c], M::GET) => Operation::GetClient(name(c)?),
            (["clients", c], M::PATCH) => Operation::EditClient(name(c)?),
            (["clients", c], M::DELETE) => Operation::DeleteClient(name(c)?),
            (["clients", c, "secret"], M::POST) => Operation::RotateSecret(name(c)?),
            (["clients", c, "unlock"], M::POST) => Operation::UnlockClient(name(c)?),
            (["resources"], M::GET) => Operation::GetResources,
            (["resources"], M::PUT) => Operation::SetResources,
            (["settings"], M::GET) => Operation::GetSettings,
            (["settings"], M::PUT) => Operation::SetSettings,
            (["tokens", "lookup"], M::POST) => Operation::LookupToken,
            (["tokens", "revoke"], M::POST) => Operation::RevokeTokens,
            (["keys"], M::GET) => Operation::ListKeys,
            (["keys", "rotate"], M::POST) => Operation::RotateKey,
            // Tenants are managed from the super tenant only; elsewhere the path does
            // not exist.
            (["tenants"], M::GET) if is_super => Operation::ListTenants,
            (["tenants"], M::POST) if is_super => Operation::CreateTenant,
            (["tenants", d], M::DELETE) if is_super => Operation::DeactivateTenant(name(d)?),
            (["audit"], M::GET) => Operation::AuditLog,
            _ => return Ok(None),
        }))
    }

    /// The operation for this request; a path in the table with another method is a
    /// 405 naming the methods it takes, any other path a 404.
    fn parse(rest: &str, method: &Method, is_super: bool) -> Result<Self, ApiError> {
        if let Some(operation) = Self::find(rest, method, is_super)? {
            return Ok(operation);
        }
        let mut allowed = Vec::new();
        for m in &METHODS {
            if Self::find(rest, m, is_super)?.is_some() {
                allowed.push(m.as_str());
            }
        }
        if allowed.is_empty() {
            return Err(ApiError::NotFound);
        }
        Err(ApiError::MethodNotAllowed(allowed.join(", ")))
    }
}

pub(super) async fn handle(
    gateway: &Gateway,
    tenant: Arc<Tenant>,
    request: &Request<Bytes>,
    rest: &str,
    path: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let method = request.method().clone();
    let operation = Operation::parse(rest, &method, tenant.is_super)?;
    let presented = match auth::parse(request.headers())? {
        // The admin API is for users: a Basic pair is never read as a client's.
        auth::Authorization::Basic { name, secret } => Presented::Basic {
            name,
            secret,
            as_client: None,
        },
        auth::Authorization::Bearer(token) => Presented::Bearer(token),
        auth::Authorization::None => Presented::Nothing,
    };
    let admin = gateway
        .authenticate_admin(tenant, presented, method.as_str(), path, log.origin.clone())
        .await?;
    log.identify(&admin.name);
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes())?;
    let body = RequestBody { request };
    execute(gateway, &admin, operation, body, &query).await
}

/// The request body, read only by operations that take one.
struct RequestBody<'a> {
    request: &'a Request<Bytes>,
}

impl RequestBody<'_> {
    fn json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        if !has_media_type(self.request, "application/json") {
            return Err(ApiError::BadRequest(
                "the body must be application/json".into(),
            ));
        }
        serde_json::from_slice(self.request.body())
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
    }
}

async fn execute(
    gateway: &Gateway,
    admin: &Admin,
    operation: Operation,
    body: RequestBody<'_>,
    query: &Form,
) -> Result<Response<Body>, ApiError> {
    let ok = |value: serde_json::Value| Ok(json(StatusCode::OK, &value));
    let created = |value: serde_json::Value| Ok(json(StatusCode::CREATED, &value));
    let done = || Ok(empty(StatusCode::NO_CONTENT));
    let g = gateway;
    use Operation as Op;
    match operation {
        Op::ListUsers => ok(json!({ "users": g.list_users(admin).await? })),
        Op::CreateUser => created(json!(g.create_user(admin, body.json()?).await?)),
        Op::GetUser(u) => ok(json!(g.get_user(admin, &u).await?)),
        Op::DeleteUser(u) => {
            g.delete_user(admin, &u).await?;
            done()
        }
        Op::SetPassword(u) => {
            g.set_password(admin, &u, body.json()?).await?;
            done()
        }
        Op::SetRoles(u) => ok(json!(g.set_roles(admin, &u, body.json()?).await?)),
        Op::SetEnabled(u) => ok(json!(g.set_enabled(admin, &u, body.json()?).await?)),
        Op::UnlockUser(u) => ok(json!(g.unlock_user(admin, &u).await?)),
        Op::ListRoles => ok(json!({ "roles": g.list_roles(admin).await? })),
        Op::CreateRole => created(json!(g.create_role(admin, body.json()?).await?)),
        Op::GetRole(r) => ok(json!(g.get_role(admin, &r).await?)),
        Op::UpdateRole(r) => ok(json!(g.update_role(admin, &r, body.json()?).await?)),
        Op::DeleteRole(r) => {
            g.delete_role(admin, &r).await?;
            done()
        }
        Op::ListClients => ok(json!({ "clients": g.list_clients(admin).await? })),
        Op::CreateClient => created(json!(g.create_client(admin, body.json()?).await?)),
        Op::GetClient(c) => ok(json!(g.get_client(admin, &c).await?)),
        Op::EditClient(c) => ok(json!(g.edit_client(admin, &c, body.json()?).await?)),
        Op::DeleteClient(c) => {
            g.delete_client(admin, &c).await?;
            done()
        }
        Op::RotateSecret(c) => ok(json!(g.rotate_secret(admin, &c).await?)),
        Op::UnlockClient(c) => ok(json!(g.unlock_client(admin, &c).await?)),
        Op::GetResources => ok(json!(g.get_resources(admin))),
        Op::SetResources => ok(json!(g.set_resources(admin, body.json()?).await?)),
        Op::GetSettings => ok(json!(g.get_settings(admin))),
        Op::SetSettings => ok(json!(g.set_settings(admin, body.json()?).await?)),
        Op::LookupToken => ok(json!(g.lookup_token(admin, body.json()?).await?)),
        Op::RevokeTokens => ok(json!({ "revoked": g.revoke_tokens(admin, body.json()?).await? })),
        Op::ListKeys => ok(json!({ "keys": g.list_keys(admin).await? })),
        Op::RotateKey => ok(json!(g.rotate_key(admin).await?)),
        Op::ListTenants => ok(json!({ "tenants": g.list_tenants().await? })),
        Op::CreateTenant => created(json!(g.create_tenant(admin, body.json()?).await?)),
        Op::DeactivateTenant(d) => {
            g.delete_tenant(admin, &d).await?;
            done()
        }
        Op::AuditLog => {
            let (limit, before) = audit_page(query)?;
            ok(json!({ "events": g.audit_log(admin, limit, before).await? }))
        }
    }
}

/// `limit` and `before` of an audit log page, as numbers; their ranges are the
/// service's to judge.
fn audit_page(query: &Form) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let number = |name: &str, what: &str| -> Result<Option<i64>, ApiError> {
        let parsed = query.get(name).map(str::parse::<i64>).transpose();
        parsed.map_err(|_| {
            ApiError::from(Error::Invalid {
                field: name.to_owned(),
                message: what.to_owned(),
            })
        })
    };
    let limit_range = format!(
        "a number from 1 to {}",
        crate::service::admin::MAX_AUDIT_PAGE
    );
    Ok((
        number("limit", &limit_range)?,
        number("before", "an event id")?,
    ))
}
