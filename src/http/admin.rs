//! The admin API under `/api/v1/` and `/t/{domain}/api/v1/` (SPEC §8). Every path is
//! matched here; the caller is authenticated and checked against the tenant's resource
//! rules before anything is read or changed.
//!
//! | path                         | methods            |
//! |------------------------------|--------------------|
//! | `users?limit=&after=&q=&enabled=&locked=` | GET, POST |
//! | `users/bulk`                 | POST               |
//! | `users/{u}`                  | GET, DELETE        |
//! | `users/{u}/password`         | PUT                |
//! | `users/{u}/roles`            | PUT                |
//! | `users/{u}/enabled`          | PUT                |
//! | `users/{u}/unlock`           | POST               |
//! | `roles?limit=&after=&q=`     | GET, POST          |
//! | `roles/{name}`               | GET, PUT, DELETE   |
//! | `clients?limit=&after=&q=`   | GET, POST          |
//! | `clients/{id}`               | GET, PATCH, DELETE |
//! | `clients/{id}/secret`        | POST               |
//! | `clients/{id}/unlock`        | POST               |
//! | `resources`                  | GET, PUT           |
//! | `settings`                   | GET, PUT           |
//! | `tokens?username=\|client_id=&limit=&after=` | GET |
//! | `tokens/lookup`, `tokens/revoke` | POST           |
//! | `keys`                       | GET                |
//! | `keys/rotate`                | POST               |
//! | `tenants?limit=&after=&q=` (super tenant) | GET, POST |
//! | `tenants/{domain}` (super)   | DELETE             |
//! | `audit?limit=&after=&before=&action=&actor=&target=&since=&until=` | GET |
//!
//! Query parameters other than those shown are refused. `openapi.json` (GET) describes
//! this table as OpenAPI 3.1, to anyone: it holds no tenant's data.

use super::form::{has_media_type, percent_decode, Form};
use super::request_log::RequestLog;
use super::{auth, cacheable, empty, json, openapi, ApiError, Body};
use crate::domain::tenant::Tenant;
use crate::service::admin::{Admin, AuditFilter, GrantsOf, ListRequest, Page, MAX_PAGE};
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
    BulkUsers,
    GetUser(String),
    DeleteUser(String),
    SetPassword(String),
    SetRoles(String),
    SetEnabled(String),
    SetProfile(String),
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
    ListGrants,
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
            (["users", "bulk"], M::POST) => Operation::BulkUsers,
            (["users", u], M::GET) => Operation::GetUser(name(u)?),
            (["users", u], M::DELETE) => Operation::DeleteUser(name(u)?),
            (["users", u, "password"], M::PUT) => Operation::SetPassword(name(u)?),
            (["users", u, "roles"], M::PUT) => Operation::SetRoles(name(u)?),
            (["users", u, "enabled"], M::PUT) => Operation::SetEnabled(name(u)?),
            (["users", u, "profile"], M::PUT) => Operation::SetProfile(name(u)?),
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
            (["tokens"], M::GET) => Operation::ListGrants,
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
    if rest == "openapi.json" {
        return match method {
            Method::GET => Ok(cacheable(
                "application/json",
                Bytes::from_static(openapi::document()),
                "public, max-age=3600",
            )),
            _ => Err(ApiError::MethodNotAllowed("GET".into())),
        };
    }
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
    let query = Query::of(query, operation.parameters())?;
    use Operation as Op;
    match operation {
        Op::ListUsers => {
            let (enabled, locked) = (query.boolean("enabled")?, query.boolean("locked")?);
            let page = g.list_users(admin, &query.list()?, enabled, locked).await?;
            ok(listed("users", page))
        }
        Op::CreateUser => created(json!(g.create_user(admin, body.json()?).await?)),
        Op::BulkUsers => ok(json!({ "results": g.bulk_users(admin, body.json()?).await? })),
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
        Op::SetProfile(u) => ok(json!(g.set_profile(admin, &u, body.json()?).await?)),
        Op::UnlockUser(u) => ok(json!(g.unlock_user(admin, &u).await?)),
        Op::ListRoles => ok(listed("roles", g.list_roles(admin, &query.list()?).await?)),
        Op::CreateRole => created(json!(g.create_role(admin, body.json()?).await?)),
        Op::GetRole(r) => ok(json!(g.get_role(admin, &r).await?)),
        Op::UpdateRole(r) => ok(json!(g.update_role(admin, &r, body.json()?).await?)),
        Op::DeleteRole(r) => {
            g.delete_role(admin, &r).await?;
            done()
        }
        Op::ListClients => ok(listed(
            "clients",
            g.list_clients(admin, &query.list()?).await?,
        )),
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
        Op::ListGrants => {
            let holder = match (query.text("username"), query.text("client_id")) {
                (Some(username), None) => GrantsOf::User(username),
                (None, Some(client_id)) => GrantsOf::Client(client_id),
                _ => {
                    return Err(invalid(
                        "username",
                        "give exactly one of username and client_id",
                    ))
                }
            };
            ok(listed(
                "grants",
                g.list_grants(admin, &query.list()?, holder).await?,
            ))
        }
        Op::LookupToken => ok(json!(g.lookup_token(admin, body.json()?).await?)),
        Op::RevokeTokens => ok(json!({ "revoked": g.revoke_tokens(admin, body.json()?).await? })),
        Op::ListKeys => ok(json!({ "keys": g.list_keys(admin).await? })),
        Op::RotateKey => ok(json!(g.rotate_key(admin).await?)),
        Op::ListTenants => ok(listed(
            "tenants",
            g.list_tenants(admin, &query.list()?).await?,
        )),
        Op::CreateTenant => created(json!(g.create_tenant(admin, body.json()?).await?)),
        Op::DeactivateTenant(d) => {
            g.delete_tenant(admin, &d).await?;
            done()
        }
        Op::AuditLog => {
            let filter = AuditFilter {
                before: query.number("before", "an event id")?,
                action: query.text("action"),
                actor: query.text("actor"),
                target: query.text("target"),
                since: query.number("since", "a time in seconds since 1970")?,
                until: query.number("until", "a time in seconds since 1970")?,
            };
            ok(listed(
                "events",
                g.audit_log(admin, &query.list()?, filter).await?,
            ))
        }
    }
}

/// A list's answer: `{key: [...], "next": cursor}`, `next` only while more remain.
fn listed<T: serde::Serialize>(key: &str, page: Page<T>) -> serde_json::Value {
    let mut answer = serde_json::Map::new();
    answer.insert(key.to_owned(), json!(page.items));
    if let Some(next) = page.next {
        answer.insert("next".to_owned(), json!(next));
    }
    serde_json::Value::Object(answer)
}

impl Operation {
    /// The query parameters this operation reads; any other is refused.
    fn parameters(&self) -> &'static [&'static str] {
        use Operation as Op;
        const LIST: &[&str] = &["limit", "after", "q"];
        match self {
            Op::ListUsers => &["limit", "after", "q", "enabled", "locked"],
            Op::ListRoles | Op::ListClients | Op::ListTenants => LIST,
            Op::ListGrants => &["username", "client_id", "limit", "after"],
            Op::AuditLog => &[
                "limit", "after", "before", "action", "actor", "target", "since", "until",
            ],
            Op::CreateUser
            | Op::BulkUsers
            | Op::GetUser(_)
            | Op::DeleteUser(_)
            | Op::SetPassword(_)
            | Op::SetRoles(_)
            | Op::SetEnabled(_)
            | Op::SetProfile(_)
            | Op::UnlockUser(_)
            | Op::CreateRole
            | Op::GetRole(_)
            | Op::UpdateRole(_)
            | Op::DeleteRole(_)
            | Op::CreateClient
            | Op::GetClient(_)
            | Op::EditClient(_)
            | Op::DeleteClient(_)
            | Op::RotateSecret(_)
            | Op::UnlockClient(_)
            | Op::GetResources
            | Op::SetResources
            | Op::GetSettings
            | Op::SetSettings
            | Op::LookupToken
            | Op::RevokeTokens
            | Op::ListKeys
            | Op::RotateKey
            | Op::CreateTenant
            | Op::DeactivateTenant(_) => &[],
        }
    }
}

/// The query string of an admin call, read as the types its parameters have; their
/// ranges are the service's to judge.
struct Query<'a> {
    form: &'a Form,
}

impl<'a> Query<'a> {
    /// The query, once every parameter is one of `known`.
    fn of(form: &'a Form, known: &[&str]) -> Result<Self, ApiError> {
        if let Some(name) = form.names().find(|n| !known.contains(n)) {
            return Err(invalid(name, "is not a parameter of this call"));
        }
        Ok(Query { form })
    }

    fn text(&self, name: &str) -> Option<String> {
        self.form.get(name).map(str::to_owned)
    }

    fn number(&self, name: &str, what: &str) -> Result<Option<i64>, ApiError> {
        let parsed = self.form.get(name).map(str::parse::<i64>).transpose();
        parsed.map_err(|_| invalid(name, what))
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.form.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(invalid(name, "true or false")),
        }
    }

    fn list(&self) -> Result<ListRequest, ApiError> {
        let limit_range = format!("a number from 1 to {MAX_PAGE}");
        Ok(ListRequest {
            limit: self.number("limit", &limit_range)?,
            after: self.text("after"),
            q: self.text("q"),
        })
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::from(Error::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Operation {
        /// The path (as the OpenAPI document writes it) and the method of an operation.
        fn template(&self) -> (&'static str, &'static str) {
            use Operation as Op;
            match self {
                Op::ListUsers => ("/users", "get"),
                Op::CreateUser => ("/users", "post"),
                Op::BulkUsers => ("/users/bulk", "post"),
                Op::GetUser(_) => ("/users/{username}", "get"),
                Op::DeleteUser(_) => ("/users/{username}", "delete"),
                Op::SetPassword(_) => ("/users/{username}/password", "put"),
                Op::SetRoles(_) => ("/users/{username}/roles", "put"),
                Op::SetEnabled(_) => ("/users/{username}/enabled", "put"),
                Op::SetProfile(_) => ("/users/{username}/profile", "put"),
                Op::UnlockUser(_) => ("/users/{username}/unlock", "post"),
                Op::ListRoles => ("/roles", "get"),
                Op::CreateRole => ("/roles", "post"),
                Op::GetRole(_) => ("/roles/{name}", "get"),
                Op::UpdateRole(_) => ("/roles/{name}", "put"),
                Op::DeleteRole(_) => ("/roles/{name}", "delete"),
                Op::ListClients => ("/clients", "get"),
                Op::CreateClient => ("/clients", "post"),
                Op::GetClient(_) => ("/clients/{client_id}", "get"),
                Op::EditClient(_) => ("/clients/{client_id}", "patch"),
                Op::DeleteClient(_) => ("/clients/{client_id}", "delete"),
                Op::RotateSecret(_) => ("/clients/{client_id}/secret", "post"),
                Op::UnlockClient(_) => ("/clients/{client_id}/unlock", "post"),
                Op::GetResources => ("/resources", "get"),
                Op::SetResources => ("/resources", "put"),
                Op::GetSettings => ("/settings", "get"),
                Op::SetSettings => ("/settings", "put"),
                Op::ListGrants => ("/tokens", "get"),
                Op::LookupToken => ("/tokens/lookup", "post"),
                Op::RevokeTokens => ("/tokens/revoke", "post"),
                Op::ListKeys => ("/keys", "get"),
                Op::RotateKey => ("/keys/rotate", "post"),
                Op::ListTenants => ("/tenants", "get"),
                Op::CreateTenant => ("/tenants", "post"),
                Op::DeactivateTenant(_) => ("/tenants/{domain}", "delete"),
                Op::AuditLog => ("/audit", "get"),
            }
        }
    }

    /// One of every operation. The match below stops compiling when an operation is
    /// added, so that it is added here (and so checked against the document) too.
    fn every_operation() -> Vec<Operation> {
        use Operation as Op;
        let x = || "x".to_owned();
        let all = vec![
            Op::ListUsers,
            Op::CreateUser,
            Op::BulkUsers,
            Op::GetUser(x()),
            Op::DeleteUser(x()),
            Op::SetPassword(x()),
            Op::SetRoles(x()),
            Op::SetEnabled(x()),
            Op::SetProfile(x()),
            Op::UnlockUser(x()),
            Op::ListRoles,
            Op::CreateRole,
            Op::GetRole(x()),
            Op::UpdateRole(x()),
            Op::DeleteRole(x()),
            Op::ListClients,
            Op::CreateClient,
            Op::GetClient(x()),
            Op::EditClient(x()),
            Op::DeleteClient(x()),
            Op::RotateSecret(x()),
            Op::UnlockClient(x()),
            Op::GetResources,
            Op::SetResources,
            Op::GetSettings,
            Op::SetSettings,
            Op::ListGrants,
            Op::LookupToken,
            Op::RevokeTokens,
            Op::ListKeys,
            Op::RotateKey,
            Op::ListTenants,
            Op::CreateTenant,
            Op::DeactivateTenant(x()),
            Op::AuditLog,
        ];
        for op in &all {
            match op {
                Op::ListUsers
                | Op::CreateUser
                | Op::BulkUsers
                | Op::GetUser(_)
                | Op::DeleteUser(_)
                | Op::SetPassword(_)
                | Op::SetRoles(_)
                | Op::SetEnabled(_)
                | Op::SetProfile(_)
                | Op::UnlockUser(_)
                | Op::ListRoles
                | Op::CreateRole
                | Op::GetRole(_)
                | Op::UpdateRole(_)
                | Op::DeleteRole(_)
                | Op::ListClients
                | Op::CreateClient
                | Op::GetClient(_)
                | Op::EditClient(_)
                | Op::DeleteClient(_)
                | Op::RotateSecret(_)
                | Op::UnlockClient(_)
                | Op::GetResources
                | Op::SetResources
                | Op::GetSettings
                | Op::SetSettings
                | Op::ListGrants
                | Op::LookupToken
                | Op::RevokeTokens
                | Op::ListKeys
                | Op::RotateKey
                | Op::ListTenants
                | Op::CreateTenant
                | Op::DeactivateTenant(_)
                | Op::AuditLog => {}
            }
        }
        all
    }

    /// A documented path with a value for each of its names, as a request has it.
    fn concrete(path: &str) -> String {
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| if s.starts_with('{') { "some-name" } else { s })
            .collect();
        segments.join("/")
    }

    #[test]
    fn the_openapi_document_describes_exactly_what_is_routed() {
        let described = openapi::described();
        for (path, method) in &described {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let found = Operation::find(&concrete(path), &m, true).unwrap();
            let op = found.unwrap_or_else(|| panic!("{method} {path} is documented, not routed"));
            assert_eq!(op.template(), (*path, *method));
        }
        for op in every_operation() {
            let template = op.template();
            assert!(
                described.contains(&template),
                "{template:?} is routed, not documented"
            );
        }
        // No other method is routed on a documented path.
        for (path, _) in &described {
            for m in &METHODS {
                if let Some(op) = Operation::find(&concrete(path), m, true).unwrap() {
                    assert!(described.contains(&op.template()), "{m} {path}");
                }
            }
        }
    }
}
