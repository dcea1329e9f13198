//! The admin API as an OpenAPI 3.1 document, served at `/api/v1/openapi.json` (and
//! under every tenant) without authentication: it describes the calls and holds no
//! tenant's data. `PATHS` is the dispatcher's table of `admin.rs` written out; a test
//! there holds the two together, and CI checks the document with a validator.

use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// What an operation takes and answers: a body schema, the success status with its
/// schema, and the query parameters.
struct Call {
    method: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    ok: (u16, Option<&'static str>),
    query: &'static [&'static str],
}

const fn call(
    method: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    ok: (u16, Option<&'static str>),
) -> Call {
    Call {
        method,
        summary,
        body,
        ok,
        query: &[],
    }
}

const LIST: &[&str] = &["limit", "after", "q"];

/// Every path of the admin API under `/api/v1`, with its calls.
const PATHS: &[(&str, &[Call])] = &[
    (
        "/users",
        &[
            Call {
                query: &["limit", "after", "q", "enabled", "locked"],
                ..call(
                    "get",
                    "A page of the tenant's users",
                    None,
                    (200, Some("UserList")),
                )
            },
            call(
                "post",
                "Create a user",
                Some("NewUser"),
                (201, Some("User")),
            ),
        ],
    ),
    (
        "/users/bulk",
        &[call(
            "post",
            "Disable, enable, unlock or delete up to 1,000 users at once",
            Some("BulkRequest"),
            (200, Some("BulkResults")),
        )],
    ),
    (
        "/users/{username}",
        &[
            call("get", "A user", None, (200, Some("User"))),
            call("delete", "Delete a user; its tokens end", None, (204, None)),
        ],
    ),
    (
        "/users/{username}/password",
        &[call(
            "put",
            "Set a user's password; its tokens end",
            Some("Password"),
            (204, None),
        )],
    ),
    (
        "/users/{username}/roles",
        &[call(
            "put",
            "Replace a user's roles",
            Some("Roles"),
            (200, Some("User")),
        )],
    ),
    (
        "/users/{username}/profile",
        &[call(
            "put",
            "Replace a user's name, email and email_verified (what is left out is cleared)",
            Some("Profile"),
            (200, Some("User")),
        )],
    ),
    (
        "/users/{username}/enabled",
        &[call(
            "put",
            "Enable or disable a user",
            Some("Enabled"),
            (200, Some("User")),
        )],
    ),
    (
        "/users/{username}/unlock",
        &[call(
            "post",
            "Lift a user's lock",
            None,
            (200, Some("User")),
        )],
    ),
    (
        "/roles",
        &[
            Call {
                query: LIST,
                ..call(
                    "get",
                    "A page of the tenant's roles",
                    None,
                    (200, Some("RoleList")),
                )
            },
            call(
                "post",
                "Create a role",
                Some("NewRole"),
                (201, Some("Role")),
            ),
        ],
    ),
    (
        "/roles/{name}",
        &[
            call("get", "A role", None, (200, Some("Role"))),
            call(
                "put",
                "Replace a role's permissions",
                Some("Permissions"),
                (200, Some("Role")),
            ),
            call(
                "delete",
                "Delete a role; it leaves every user",
                None,
                (204, None),
            ),
        ],
    ),
    (
        "/clients",
        &[
            Call {
                query: LIST,
                ..call(
                    "get",
                    "A page of the tenant's clients",
                    None,
                    (200, Some("ClientList")),
                )
            },
            call(
                "post",
                "Register a client; a confidential client's secret is shown once",
                Some("NewClient"),
                (201, Some("RegisteredClient")),
            ),
        ],
    ),
    (
        "/clients/{client_id}",
        &[
            call(
                "get",
                "A client (never its secret)",
                None,
                (200, Some("Client")),
            ),
            call(
                "patch",
                "Edit a client's registration",
                Some("ClientPatch"),
                (200, Some("Client")),
            ),
            call(
                "delete",
                "Delete a client; its tokens end",
                None,
                (204, None),
            ),
        ],
    ),
    (
        "/clients/{client_id}/secret",
        &[call(
            "post",
            "Rotate a client's secret; the old one fails at once",
            None,
            (200, Some("Secret")),
        )],
    ),
    (
        "/clients/{client_id}/unlock",
        &[call(
            "post",
            "Lift a client's lock",
            None,
            (200, Some("Client")),
        )],
    ),
    (
        "/resources",
        &[
            call(
                "get",
                "The tenant's resource rules",
                None,
                (200, Some("ResourcesView")),
            ),
            call(
                "put",
                "Replace the tenant's resource rules",
                Some("Resources"),
                (200, Some("ResourcesView")),
            ),
        ],
    ),
    (
        "/settings",
        &[
            call(
                "get",
                "The tenant's settings",
                None,
                (200, Some("SettingsView")),
            ),
            call(
                "put",
                "Replace the tenant's settings; what is left out takes its default",
                Some("Settings"),
                (200, Some("SettingsView")),
            ),
        ],
    ),
    (
        "/tokens",
        &[Call {
            query: &["username", "client_id", "limit", "after"],
            ..call(
                "get",
                "A page of a user's or a client's grants that still hold an active token",
                None,
                (200, Some("GrantList")),
            )
        }],
    ),
    (
        "/tokens/lookup",
        &[call(
            "post",
            "A token's state and the story of its grant",
            Some("TokenRequest"),
            (200, Some("TokenView")),
        )],
    ),
    (
        "/tokens/revoke",
        &[call(
            "post",
            "Revoke a token, a user's, a client's or a grant's tokens",
            Some("RevokeRequest"),
            (200, Some("Revoked")),
        )],
    ),
    (
        "/keys",
        &[call(
            "get",
            "The tenant's signing keys",
            None,
            (200, Some("KeyList")),
        )],
    ),
    (
        "/keys/rotate",
        &[call(
            "post",
            "Rotate the tenant's signing key",
            None,
            (200, Some("Key")),
        )],
    ),
    (
        "/tenants",
        &[
            Call {
                query: LIST,
                ..call(
                    "get",
                    "A page of every tenant (super tenant only)",
                    None,
                    (200, Some("TenantList")),
                )
            },
            call(
                "post",
                "Create a tenant with its first admin (super tenant only)",
                Some("NewTenant"),
                (201, Some("Tenant")),
            ),
        ],
    ),
    (
        "/tenants/{domain}",
        &[call(
            "delete",
            "Deactivate a tenant; its tokens end (super tenant only)",
            None,
            (204, None),
        )],
    ),
    (
        "/audit",
        &[Call {
            query: &[
                "limit", "after", "before", "action", "actor", "target", "since", "until",
            ],
            ..call(
                "get",
                "A page of the audit log, newest first",
                None,
                (200, Some("AuditList")),
            )
        }],
    ),
];

/// The paths and methods the document describes, as `("/users/{username}", "get")`.
#[cfg(test)]
pub(super) fn described() -> Vec<(&'static str, &'static str)> {
    PATHS
        .iter()
        .flat_map(|(path, calls)| calls.iter().map(move |c| (*path, c.method)))
        .collect()
}

/// The document as served, built once.
pub(super) fn document() -> &'static [u8] {
    static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();
    DOCUMENT.get_or_init(|| build().to_string().into_bytes())
}

fn build() -> Value {
    let mut paths = Map::new();
    for (path, calls) in PATHS {
        let mut item = Map::new();
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        if !names.is_empty() {
            let parameters: Vec<Value> = names
                .iter()
                .map(|name| {
                    json!({"name": name, "in": "path", "required": true,
                           "schema": {"type": "string"}})
                })
                .collect();
            item.insert("parameters".into(), Value::Array(parameters));
        }
        for c in *calls {
            item.insert(c.method.into(), operation(path, c));
        }
        paths.insert((*path).into(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tenant administration. Callers authenticate with Basic \
                USERNAME@TENANT:PASSWORD or a user's Bearer access token, and are checked \
                against the tenant's resource rules. Every change is audited."
        },
        "servers": [
            {"url": "/api/v1", "description": "the super tenant"},
            {"url": "/t/{domain}/api/v1", "description": "a tenant",
             "variables": {"domain": {"default": "foo.com"}}}
        ],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"}
            },
            "parameters": query_parameters(),
            "responses": {"Error": {
                "description": "An error (RFC 6749 §5.2 shape); `field` names a bad input",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }},
            "schemas": schemas()
        }
    })
}

fn operation(path: &str, c: &Call) -> Value {
    let (status, schema) = c.ok;
    let ok = match schema {
        Some(name) => json!({"description": c.summary, "content": {"application/json":
            {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}),
        None => json!({"description": c.summary}),
    };
    let mut responses = Map::new();
    responses.insert(status.to_string(), ok);
    let mut errors = vec![400, 401, 403, 404, 405, 429, 503];
    if matches!(c.method, "post" | "put" | "patch" | "delete") {
        // A duplicate, or a change to what a tenant file declares.
        errors.push(409);
    }
    for code in errors {
        responses.insert(
            code.to_string(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    let id: String = format!("{}{}", c.method, path)
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
        .collect();
    let mut op = json!({"operationId": id, "summary": c.summary, "responses": responses});
    if let Some(body) = c.body {
        op["requestBody"] = json!({"required": true, "content": {"application/json":
            {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
    }
    if !c.query.is_empty() {
        let refs: Vec<Value> = c
            .query
            .iter()
            .map(|q| json!({"$ref": format!("#/components/parameters/{q}")}))
            .collect();
        op["parameters"] = Value::Array(refs);
    }
    op
}

fn query_parameters() -> Value {
    let p = |name: &str, schema: Value, description: &str| {
        json!({"name": name, "in": "query", "required": false, "schema": schema,
               "description": description})
    };
    let text = || json!({"type": "string"});
    let time = || json!({"type": "integer", "format": "int64"});
    json!({
        "limit": p("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}), "items in a page"),
        "after": p("after", text(), "the `next` of the previous page"),
        "q": p("q", json!({"type": "string", "maxLength": 256}), "only names that start with this"),
        "enabled": p("enabled", json!({"type": "boolean"}), "only enabled or disabled users"),
        "locked": p("locked", json!({"type": "boolean"}), "only locked or unlocked users"),
        "before": p("before", time(), "an event id: only older events"),
        "action": p("action", text(), "an audit action, such as user.create"),
        "actor": p("actor", text(), "who acted, such as admin@foo.com"),
        "target": p("target", text(), "what the action was on"),
        "since": p("since", time(), "from this Unix time on, inclusive"),
        "until": p("until", time(), "up to this Unix time, inclusive"),
        "username": p("username", text(), "the user whose grants to list"),
        "client_id": p("client_id", text(), "the client whose grants to list")
    })
}

/// `{"type": "object", ...}` with these properties, of which `required` must be there.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required,
           "additionalProperties": false})
}

/// A page of `item`s under `key`, with the next cursor while more remain.
fn page(key: &str, item: &str) -> Value {
    let mut properties = Map::new();
    properties.insert(
        key.into(),
        json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}}),
    );
    properties.insert("next".into(), json!({"type": "string"}));
    object(Value::Object(properties), &[key])
}

fn schemas() -> Value {
    let text = || json!({"type": "string"});
    let texts = || json!({"type": "array", "items": {"type": "string"}});
    let int = || json!({"type": "integer", "format": "int64"});
    let boolean = || json!({"type": "boolean"});
    let profile_name = || json!({"type": "string", "minLength": 1, "maxLength": 256});
    let email = || json!({"type": "string", "format": "email", "maxLength": 254});
    let maybe = |t: &str| json!({"type": [t, "null"]});
    let owner = || json!({"type": "string", "enum": ["file", "api"]});
    let token_format = || json!({"type": "string", "enum": ["opaque", "jwt"]});
    let lifetimes = object(
        json!({"access_token_ttl": int(), "refresh_token_ttl": int(),
               "authorization_code_ttl": int(), "grant_max_lifetime": int()}),
        &[],
    );
    let settings_properties = json!({
        "tokens": lifetimes,
        "introspection": object(json!({"allowed_clients": texts()}), &[]),
        "rate_limits": object(json!({"requests_per_caller": maybe("integer"),
                                     "requests_per_tenant": maybe("integer")}), &[])
    });
    let mut settings_view = settings_properties.clone();
    settings_view["managed_by"] = owner();
    let rule = object(
        json!({"context": text(), "secured": boolean(), "http_method": text(),
               "permissions": texts()}),
        &["context"],
    );
    let client_properties = json!({
        "client_id": text(), "public": boolean(), "grant_types": texts(),
        "redirect_uris": texts(), "scopes": texts(), "require_pkce": boolean(),
        "access_token_format": token_format(),
        "name": text(), "managed_by": owner(), "locked": boolean(), "locked_until": int()
    });
    let mut registered = client_properties.clone();
    registered["client_secret"] = text();
    let grant_token = object(
        json!({"kind": text(), "jti": text(), "state": text(), "state_reason": maybe("string"),
               "issued_at": int(), "ended_at": maybe("integer"), "ended_by": maybe("string"),
               "ended_from": maybe("string")}),
        &["kind", "jti", "state", "issued_at"],
    );
    let audit_event = object(
        json!({"id": int(), "at": int(), "actor": text(), "action": text(), "target": text(),
               "client_address": text(), "detail": text(),
               "via": {"type": "string", "enum": ["console"]}}),
        &["id", "at", "actor", "action", "target", "client_address"],
    );
    let errors_and_users = json!({
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": text(), "error_description": text(), "field": text()}},
        "User": object(json!({"username": text(), "roles": texts(), "enabled": boolean(),
            "locked": boolean(), "locked_until": int(), "managed_by": owner(),
            "name": text(), "email": text(), "email_verified": boolean()}),
            &["username", "roles", "enabled", "locked", "managed_by"]),
        "UserList": page("users", "User"),
        "NewUser": object(json!({"username": text(), "password": {"type": "string", "minLength": 8},
            "roles": texts(), "name": profile_name(), "email": email(), "email_verified": boolean()}),
            &["username", "password"]),
        "Profile": object(json!({"name": profile_name(), "email": email(),
            "email_verified": boolean()}), &[]),
        "Password": object(json!({"password": {"type": "string", "minLength": 8}}), &["password"]),
        "Roles": object(json!({"roles": texts()}), &["roles"]),
        "Enabled": object(json!({"enabled": boolean()}), &["enabled"]),
        "BulkRequest": object(json!({
            "action": {"type": "string", "enum": ["disable", "enable", "unlock", "delete"]},
            "usernames": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                          "maxItems": 1000, "uniqueItems": true}}), &["action", "usernames"]),
        "BulkResults": object(json!({"results": {"type": "array", "items": object(json!({
            "username": text(),
            "outcome": {"type": "string", "enum": ["disabled", "enabled", "unlocked", "deleted",
                                                   "not_found", "managed_by_file"]}}),
            &["username", "outcome"])}}), &["results"])
    });
    let users_and_roles = json!({
        "Role": object(json!({"name": text(), "permissions": texts(), "managed_by": owner()}),
            &["name", "permissions", "managed_by"]),
        "RoleList": page("roles", "Role"),
        "NewRole": object(json!({"name": text(), "permissions": texts()}), &["name", "permissions"]),
        "Permissions": object(json!({"permissions": texts()}), &["permissions"]),
        "Client": object(client_properties, &["client_id", "public", "grant_types",
            "redirect_uris", "scopes", "require_pkce", "access_token_format", "managed_by", "locked"]),
        "ClientList": page("clients", "Client"),
        "RegisteredClient": object(registered, &["client_id", "public", "grant_types",
            "redirect_uris", "scopes", "require_pkce", "access_token_format", "managed_by", "locked"]),
        "NewClient": object(json!({"client_id": text(), "public": boolean(),
            "grant_types": texts(), "redirect_uris": texts(), "scopes": texts(),
            "require_pkce": boolean(), "name": text(), "access_token_format": token_format()}),
            &["grant_types"]),
        "ClientPatch": object(json!({"grant_types": texts(), "redirect_uris": texts(),
            "scopes": texts(), "require_pkce": boolean(), "name": text(),
            "access_token_format": token_format()}), &[]),
        "Secret": object(json!({"client_id": text(), "client_secret": text()}),
            &["client_id", "client_secret"]),
        "Resources": object(json!({"resources": {"type": "array", "items": rule}}), &["resources"]),
        "ResourcesView": object(json!({"resources": {"type": "array", "items": rule},
            "managed_by": owner()}), &["resources", "managed_by"]),
        "Settings": object(settings_properties, &[]),
        "SettingsView": object(settings_view, &["tokens", "introspection", "rate_limits", "managed_by"])
    });
    let tokens = json!({
        "TokenRequest": object(json!({"token": text()}), &["token"]),
        "TokenView": object(json!({
            "kind": text(), "state": text(), "state_reason": maybe("string"),
            "state_changed_at": maybe("integer"), "state_changed_by": maybe("string"),
            "client_id": text(), "username": maybe("string"), "scope": text(), "iat": int(),
            "exp": int(), "grant_id": text(),
            "grant": object(json!({"started_at": int(), "client_id": text(),
                "username": maybe("string"), "tokens": {"type": "array", "items": grant_token},
                "admin_actions": {"type": "array", "items": audit_event.clone()}}),
                &["started_at", "client_id", "tokens", "admin_actions"])}),
            &["kind", "state", "client_id", "scope", "iat", "exp", "grant_id", "grant"])
    });
    let others = json!({
        "Grant": object(json!({"grant_id": text(), "started_at": int(), "client_id": text(),
            "username": maybe("string"), "last_issued_at": int(), "active_tokens": int()}),
            &["grant_id", "started_at", "client_id", "last_issued_at", "active_tokens"]),
        "GrantList": page("grants", "Grant"),
        "RevokeRequest": {"type": "object", "additionalProperties": false,
            "minProperties": 1, "maxProperties": 1,
            "properties": {"token": text(), "username": text(), "client_id": text(),
                           "grant_id": text()}},
        "Revoked": object(json!({"revoked": int()}), &["revoked"]),
        "Key": object(json!({"kid": text(), "created_at": int(),
            "state": {"type": "string", "enum": ["active", "retiring"]},
            "published_until": int()}), &["kid", "created_at", "state"]),
        "KeyList": object(json!({"keys": {"type": "array", "items": {"$ref": "#/components/schemas/Key"}}}), &["keys"]),
        "Tenant": object(json!({"domain": text(), "active": boolean()}), &["domain", "active"]),
        "TenantList": page("tenants", "Tenant"),
        "NewTenant": object(json!({"domain": text(), "admin": object(json!({"username": text(),
            "password": {"type": "string", "minLength": 8}}), &["username", "password"])}),
            &["domain", "admin"]),
        "AuditEvent": audit_event,
        "AuditList": page("events", "AuditEvent")
    });
    let mut all = Map::new();
    for part in [errors_and_users, users_and_roles, tokens, others] {
        if let Value::Object(map) = part {
            all.extend(map);
        }
    }
    Value::Object(all)
}
