//! End-to-end: tenant administration (SPEC §8) against the real TLS server, on SQLite
//! and PostgreSQL: every call, changes effective on the next request, lifecycle,
//! lockout, tenants, confinement and the audit log.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{TestServer, ADMIN_PASSWORD};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);
const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");
const VIEW: &str = "/permission/admin/manage/identity/applicationmgt/view";

fn token_of(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

async fn a_tenant_admin_runs_users_and_roles(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    // A role that may introspect, a user holding it.
    let (status, role) = s
        .api(
            "POST",
            &format!("{api}/roles"),
            FOO_ADMIN,
            Some(json!({"name": "rs", "permissions": [VIEW]})),
        )
        .await;
    assert_eq!((status, role["name"].as_str()), (201, Some("rs")));
    let (status, user) = s
        .api(
            "POST",
            &format!("{api}/users"),
            FOO_ADMIN,
            Some(json!({"username": "bob", "password": "bob-password", "roles": ["rs"]})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        user,
        json!({"username": "bob", "roles": ["rs"], "enabled": true, "locked": false, "managed_by": "api"})
    );
    let token = token_of(
        &s.client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
            .await,
    );
    let (status, body) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("bob@foo.com", "bob-password"),
            &token,
        )
        .await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(true)));
    // Take the permission away: refused on the very next request.
    let (status, _) = s
        .api(
            "PUT",
            &format!("{api}/roles/rs"),
            FOO_ADMIN,
            Some(json!({"permissions": [format!("{VIEW}er")]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("bob@foo.com", "bob-password"),
            &token,
        )
        .await;
    assert_eq!(status, 403);
    // A parent path grants its children.
    s.api(
        "PUT",
        &format!("{api}/roles/rs"),
        FOO_ADMIN,
        Some(json!({"permissions": ["/permission/admin/manage"]})),
    )
    .await;
    let (status, _) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("bob@foo.com", "bob-password"),
            &token,
        )
        .await;
    assert_eq!(status, 200);
    // Roles taken from the user apply at once too.
    let (status, user) = s
        .api(
            "PUT",
            &format!("{api}/users/bob/roles"),
            FOO_ADMIN,
            Some(json!({"roles": []})),
        )
        .await;
    assert_eq!((status, user["roles"].clone()), (200, json!([])));
    let (status, _) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("bob@foo.com", "bob-password"),
            &token,
        )
        .await;
    assert_eq!(status, 403);
    // Listing and reading.
    let (_, users) = s.api("GET", &format!("{api}/users"), FOO_ADMIN, None).await;
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"bob") && names.contains(&"alice"));
    let (status, _) = s
        .api("GET", &format!("{api}/users/nobody-here"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 404);
    let (_, roles) = s.api("GET", &format!("{api}/roles"), FOO_ADMIN, None).await;
    assert!(roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "rs"));
    let (status, _) = s
        .api("DELETE", &format!("{api}/roles/rs"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .api("GET", &format!("{api}/roles/rs"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 404);
}

async fn bad_admin_input_is_400_naming_the_field(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    let cases = [
        (
            "POST",
            "users",
            json!({"username": "a b", "password": "long-enough"}),
            "username",
        ),
        (
            "POST",
            "users",
            json!({"username": "carol", "password": "short"}),
            "password",
        ),
        (
            "POST",
            "users",
            json!({"username": "carol", "password": "long-enough", "roles": ["ghost"]}),
            "roles[0]",
        ),
        (
            "POST",
            "roles",
            json!({"name": "r", "permissions": ["/perm/x"]}),
            "permissions[0]",
        ),
        (
            "PUT",
            "resources",
            json!({"resources": [{"context": "(", "permissions": []}]}),
            "resources[0]",
        ),
        (
            "POST",
            "clients",
            json!({"grant_types": ["implicit"]}),
            "grant_types[0]",
        ),
        (
            "POST",
            "tokens/revoke",
            json!({"username": "a", "client_id": "b"}),
            "token",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = s
            .api(method, &format!("{api}/{path}"), FOO_ADMIN, Some(body))
            .await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["error"], "invalid_request");
        assert_eq!(answer["field"], field, "{answer}");
    }
    // Malformed JSON, a missing field and an unknown field name themselves.
    let r = s
        .client
        .post(s.url(&format!("{api}/users")))
        .basic_auth(FOO_ADMIN.0, Some(FOO_ADMIN.1))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, answer) = s
        .api(
            "POST",
            &format!("{api}/users"),
            FOO_ADMIN,
            Some(json!({"username": "carol"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{answer}"
    );
    let (_, answer) = s
        .api(
            "POST",
            &format!("{api}/roles"),
            FOO_ADMIN,
            Some(json!({"name": "x", "permissions": [], "colour": 1})),
        )
        .await;
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{answer}"
    );
    // Duplicates are 409; unknown paths 404; wrong methods 405 with Allow.
    let (status, _) = s
        .api(
            "POST",
            &format!("{api}/users"),
            FOO_ADMIN,
            Some(json!({"username": "alice", "password": "long-enough"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = s
        .api("GET", &format!("{api}/nothing"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 404);
    let r = s
        .client
        .patch(s.url(&format!("{api}/users")))
        .basic_auth(FOO_ADMIN.0, Some(FOO_ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, POST");
    // A body that is not JSON.
    let r = s
        .client
        .post(s.url(&format!("{api}/roles")))
        .basic_auth(FOO_ADMIN.0, Some(FOO_ADMIN.1))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn an_old_password_and_an_old_secret_fail_at_once(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    s.api_user(
        "/t/foo.com",
        FOO_ADMIN,
        "carol",
        "carol-password",
        &["admin"],
    )
    .await;
    let carol = ("carol@foo.com", "carol-password");
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("carol", "carol-password"),
        )
        .await;
    // Prove the old password is cached as verified, then change it.
    let (status, _) = s
        .api("GET", &format!("{api}/users/carol"), carol, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .api(
            "PUT",
            &format!("{api}/users/carol/password"),
            FOO_ADMIN,
            Some(json!({"password": "brand-new-password"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .api("GET", &format!("{api}/users/carol"), carol, None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .api(
            "GET",
            &format!("{api}/users/carol"),
            ("carol@foo.com", "brand-new-password"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Her tokens became INACTIVE, and the lookup says why.
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &token_of(&pair)).await);
    let (status, info) = s
        .api(
            "POST",
            &format!("{api}/tokens/lookup"),
            FOO_ADMIN,
            Some(json!({"token": token_of(&pair)})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["state"], "INACTIVE");
    assert_eq!(info["state_reason"], "password_changed");
    assert_eq!(info["state_changed_by"], "admin@foo.com");
    assert_eq!(info["kind"], "access_token");
    assert_eq!(info["username"], "carol@foo.com");
    let refresh = pair["refresh_token"].as_str().unwrap();
    let (_, info) = s
        .api(
            "POST",
            &format!("{api}/tokens/lookup"),
            FOO_ADMIN,
            Some(json!({"token": refresh})),
        )
        .await;
    assert_eq!(
        (info["kind"].as_str(), info["state_reason"].as_str()),
        (Some("refresh_token"), Some("password_changed"))
    );

    // The same for a client secret.
    let secret = s.api_client("/t/foo.com", FOO_ADMIN, "api-client").await;
    let api_client = ("api-client", secret.as_str());
    s.client_token("/t/foo.com/oauth2/token", api_client, None)
        .await;
    let (status, rotated) = s
        .api(
            "POST",
            &format!("{api}/clients/api-client/secret"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(new_secret.len() >= 40);
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(api_client),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    s.client_token("/t/foo.com/oauth2/token", ("api-client", &new_secret), None)
        .await;
    // The secret is never shown again.
    let (_, client) = s
        .api("GET", &format!("{api}/clients/api-client"), FOO_ADMIN, None)
        .await;
    assert!(client.get("client_secret").is_none());
    assert!(!client.to_string().contains(&new_secret));
}

async fn lifecycle_events_move_tokens_to_their_states(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    let lookup = |token: String| {
        let s = &s;
        async move {
            let (status, info) = s
                .api(
                    "POST",
                    "/t/foo.com/api/v1/tokens/lookup",
                    FOO_ADMIN,
                    Some(json!({"token": token})),
                )
                .await;
            assert_eq!(status, 200, "{info}");
            (
                info["state"].as_str().unwrap().to_owned(),
                info["state_reason"].as_str().map(str::to_owned),
            )
        }
    };
    // Disabling a user.
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    let (status, user) = s
        .api(
            "PUT",
            &format!("{api}/users/alice/enabled"),
            FOO_ADMIN,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!((status, user["enabled"].as_bool()), (200, Some(false)));
    assert_eq!(
        lookup(token_of(&pair)).await,
        ("INACTIVE".into(), Some("user_disabled".into()))
    );
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(FOO_CLIENT),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    s.api(
        "PUT",
        &format!("{api}/users/alice/enabled"),
        FOO_ADMIN,
        Some(json!({"enabled": true})),
    )
    .await;
    // Deleting a user (one the API made: a file's users are the file's to delete).
    s.api_user("/t/foo.com", FOO_ADMIN, "carol", "carol-password", &[])
        .await;
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("carol", "carol-password"),
        )
        .await;
    let (status, _) = s
        .api("DELETE", &format!("{api}/users/carol"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        lookup(token_of(&pair)).await,
        ("INACTIVE".into(), Some("user_deleted".into()))
    );
    assert_eq!(
        lookup(pair["refresh_token"].as_str().unwrap().to_owned())
            .await
            .1
            .as_deref(),
        Some("user_deleted")
    );
    let (status, _) = s
        .api("DELETE", &format!("{api}/users/carol"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 404);
    // Deleting a client.
    let secret = s.api_client("/t/foo.com", FOO_ADMIN, "api-other").await;
    let cc = s
        .client_token(
            "/t/foo.com/oauth2/token",
            ("api-other", secret.as_str()),
            None,
        )
        .await;
    let (status, _) = s
        .api(
            "DELETE",
            &format!("{api}/clients/api-other"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        lookup(token_of(&cc)).await,
        ("INACTIVE".into(), Some("client_deleted".into()))
    );
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(("api-other", secret.as_str())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    // Revocation by token, by user and by client, with counts.
    let one = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    let (_, revoked) = s
        .api(
            "POST",
            &format!("{api}/tokens/revoke"),
            FOO_ADMIN,
            Some(json!({"token": token_of(&one)})),
        )
        .await;
    assert_eq!(revoked, json!({"revoked": 1}));
    assert_eq!(
        lookup(token_of(&one)).await,
        ("REVOKED".into(), Some("revoked_by_admin".into()))
    );
    let admin_pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("admin", "foo-admin-password"),
        )
        .await;
    let (_, revoked) = s
        .api(
            "POST",
            &format!("{api}/tokens/revoke"),
            FOO_ADMIN,
            Some(json!({"username": "admin"})),
        )
        .await;
    assert_eq!(revoked, json!({"revoked": 2}));
    assert_eq!(lookup(token_of(&admin_pair)).await.0, "REVOKED");
    s.client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    s.client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    // Every token of the client not yet REVOKED: the two new ones and the four that
    // alice's disabling and carol's deletion made INACTIVE (INACTIVE → REVOKED is allowed).
    let (_, revoked) = s
        .api(
            "POST",
            &format!("{api}/tokens/revoke"),
            FOO_ADMIN,
            Some(json!({"client_id": "foo-client"})),
        )
        .await;
    assert_eq!(revoked, json!({"revoked": 6}));
    let (_, revoked) = s
        .api(
            "POST",
            &format!("{api}/tokens/revoke"),
            FOO_ADMIN,
            Some(json!({"token": "unknown"})),
        )
        .await;
    assert_eq!(revoked, json!({"revoked": 0}));
    // An unknown token is 404 at lookup; expiry is reported as EXPIRED.
    let (status, _) = s
        .api(
            "POST",
            &format!("{api}/tokens/lookup"),
            FOO_ADMIN,
            Some(json!({"token": "unknown"})),
        )
        .await;
    assert_eq!(status, 404);
}

async fn a_deactivated_tenant_disappears_with_its_tokens(s: TestServer) {
    let token = token_of(
        &s.client_token("/oauth2/token", ("bar-client", "bar-secret"), None)
            .await,
    );
    assert!(
        s.is_active(
            "/t/bar.com",
            ("admin@bar.com", "bar-admin-password"),
            &token
        )
        .await
    );
    let (status, _) = s
        .api("DELETE", "/api/v1/tenants/bar.com", ADMIN, None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = s
        .introspect(
            "/t/bar.com/oauth2/introspect",
            ("admin@bar.com", "bar-admin-password"),
            &token,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("tenant_not_found"))
    );
    let r = s
        .post_form(
            "/oauth2/token",
            Some(("bar-client", "bar-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    let (_, tenants) = s.api("GET", "/api/v1/tenants", ADMIN, None).await;
    let bar = tenants["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["domain"] == "bar.com")
        .unwrap()
        .clone();
    assert_eq!(bar["active"], false);
    let tenant_id = s
        .gateway
        .store()
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.domain == "bar.com")
        .unwrap()
        .id;
    let record = s
        .gateway
        .store()
        .token(tenant_id, &portcullis::service::token_text::digest(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.state_reason,
        Some(portcullis::domain::token::Reason::TenantDeactivated)
    );
    let (status, _) = s
        .api("DELETE", "/api/v1/tenants/carbon.super", ADMIN, None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .api("DELETE", "/api/v1/tenants/nope.org", ADMIN, None)
        .await;
    assert_eq!(status, 404);
}

async fn the_super_admin_creates_tenants_that_work_at_once(s: TestServer) {
    let (status, created) = s.api("POST", "/api/v1/tenants", ADMIN,
        Some(json!({"domain": "new.org", "admin": {"username": "boss", "password": "boss-password"}}))).await;
    assert_eq!(
        (status, created),
        (201, json!({"domain": "new.org", "active": true}))
    );
    let (status, _) = s.api("POST", "/api/v1/tenants", ADMIN,
        Some(json!({"domain": "new.org", "admin": {"username": "boss", "password": "boss-password"}}))).await;
    assert_eq!(status, 409);
    let (status, answer) = s.api("POST", "/api/v1/tenants", ADMIN,
        Some(json!({"domain": "Bad_Domain", "admin": {"username": "boss", "password": "boss-password"}}))).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("domain")));
    // The first admin holds /permission/admin in the new tenant: registers a client,
    // gets a token, introspects it.
    let boss = ("boss@new.org", "boss-password");
    let (status, client) = s
        .api(
            "POST",
            "/t/new.org/api/v1/clients",
            boss,
            Some(json!({"grant_types": ["client_credentials"], "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
    let token = token_of(
        &s.client_token("/t/new.org/oauth2/token", (&id, &secret), Some("read"))
            .await,
    );
    assert!(s.is_active("/t/new.org", boss, &token).await);
    // Only the super tenant may manage tenants, and only with the permission.
    let (status, _) = s.api("GET", "/t/new.org/api/v1/tenants", boss, None).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .api(
            "GET",
            "/api/v1/tenants",
            ("viewer", "viewer-password"),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

async fn admins_are_confined_to_their_tenant(s: TestServer) {
    for (path, who) in [
        ("/t/bar.com/api/v1/users", FOO_ADMIN),
        ("/api/v1/users", FOO_ADMIN),
        ("/t/foo.com/api/v1/users", ADMIN),
        (
            "/t/foo.com/api/v1/users",
            ("admin@bar.com", "bar-admin-password"),
        ),
    ] {
        let (status, _) = s.api("GET", path, who, None).await;
        assert!(
            status == 401 || status == 403,
            "{path} as {}: {status}",
            who.0
        );
    }
    // Another tenant's client is not visible, even by id.
    let (status, _) = s
        .api(
            "GET",
            "/t/foo.com/api/v1/clients/bar-client",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .api(
            "DELETE",
            "/t/foo.com/api/v1/clients/bar-client",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 404);
    // A client cannot use the admin API; a user without the permission gets 403.
    let (status, _) = s
        .api("GET", "/t/foo.com/api/v1/users", FOO_CLIENT, None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .api(
            "GET",
            "/t/foo.com/api/v1/users",
            ("alice@foo.com", "alice-password"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // A Bearer token of the tenant admin works; a client's does not.
    let admin_token = token_of(
        &s.password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("admin", "foo-admin-password"),
        )
        .await,
    );
    let r = s
        .client
        .get(s.url("/t/foo.com/api/v1/users"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(s.url("/t/bar.com/api/v1/users"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let client_token = token_of(
        &s.client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
            .await,
    );
    let r = s
        .client
        .get(s.url("/t/foo.com/api/v1/users"))
        .bearer_auth(&client_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn repeated_failures_lock_users_and_clients(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    let token = token_of(
        &s.password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await,
    );
    // Four failures, a success: the count starts again.
    for _ in 0..4 {
        s.api(
            "GET",
            &format!("{api}/users"),
            ("alice@foo.com", "wrong"),
            None,
        )
        .await;
    }
    s.password_token(
        "/t/foo.com/oauth2/token",
        FOO_CLIENT,
        ("alice", "alice-password"),
    )
    .await;
    let (_, user) = s
        .api("GET", &format!("{api}/users/alice"), FOO_ADMIN, None)
        .await;
    assert_eq!(user["locked"], false);
    // Five in a row, across Basic auth and the password grant, lock her.
    for _ in 0..3 {
        s.api(
            "GET",
            &format!("{api}/users"),
            ("alice@foo.com", "wrong"),
            None,
        )
        .await;
    }
    for _ in 0..2 {
        let r = s
            .post_form(
                "/t/foo.com/oauth2/token",
                Some(FOO_CLIENT),
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "wrong"),
                ],
            )
            .await;
        assert_eq!(r.status(), 400);
    }
    let (_, user) = s
        .api("GET", &format!("{api}/users/alice"), FOO_ADMIN, None)
        .await;
    assert_eq!(user["locked"], true, "{user}");
    assert!(user["locked_until"].as_i64().unwrap() > 0);
    // The right password now fails like a wrong one; her tokens live on.
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(FOO_CLIENT),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error_description"],
        "the username or password is wrong"
    );
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, &token).await);
    // An admin lifts the lock.
    let (status, user) = s
        .api(
            "POST",
            &format!("{api}/users/alice/unlock"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!((status, user["locked"].as_bool()), (200, Some(false)));
    s.password_token(
        "/t/foo.com/oauth2/token",
        FOO_CLIENT,
        ("alice", "alice-password"),
    )
    .await;

    // Clients lock the same way, at the token, introspection and revocation endpoints.
    s.post_form(
        "/t/foo.com/oauth2/token",
        Some(("foo-other", "bad")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    s.post_form(
        "/t/foo.com/oauth2/token",
        Some(("foo-other", "bad")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    s.post_form(
        "/t/foo.com/oauth2/introspect",
        Some(("foo-other", "bad")),
        &[("token", "x")],
    )
    .await;
    s.post_form(
        "/t/foo.com/oauth2/revoke",
        Some(("foo-other", "bad")),
        &[("token", "x")],
    )
    .await;
    s.post_form(
        "/t/foo.com/oauth2/revoke",
        Some(("foo-other", "bad")),
        &[("token", "x")],
    )
    .await;
    let (_, client) = s
        .api("GET", &format!("{api}/clients/foo-other"), FOO_ADMIN, None)
        .await;
    assert_eq!(client["locked"], true, "{client}");
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(("foo-other", "other-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    let (status, client) = s
        .api(
            "POST",
            &format!("{api}/clients/foo-other/unlock"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!((status, client["locked"].as_bool()), (200, Some(false)));
    s.client_token(
        "/t/foo.com/oauth2/token",
        ("foo-other", "other-secret"),
        None,
    )
    .await;
}

/// What `GET /resources` shows after `rules` were put: them, then the guards of keys and
/// settings, which the tenant did not write itself.
fn shown_with_guards(rules: &Value) -> Value {
    let mut shown = rules.clone();
    let guards = [
        (
            "(.*)/api/v1/keys(.*)",
            "/permission/admin/manage/identity/keymgt",
        ),
        (
            "(.*)/api/v1/settings(.*)",
            "/permission/admin/manage/identity/tenantmgt",
        ),
    ];
    let list = shown["resources"].as_array_mut().unwrap();
    for (context, permission) in guards {
        list.push(
            json!({"context": context, "secured": true, "http_method": "all",
                         "permissions": [permission]}),
        );
    }
    shown["managed_by"] = json!("api");
    shown
}

async fn resource_rules_are_replaced_and_apply_at_once(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    let (status, rules) = s
        .api("GET", &format!("{api}/resources"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        rules["resources"][0]["context"],
        "(.*)/oauth2/introspect(.*)"
    );
    let token = token_of(
        &s.client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
            .await,
    );
    let (status, _) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("alice@foo.com", "alice-password"),
            &token,
        )
        .await;
    assert_eq!(status, 403);
    // Alice may introspect once the rule asks for nothing she lacks.
    let new_rules = json!({"resources": [
        {"context": "(.*)/oauth2/introspect(.*)", "secured": true, "http_method": "all", "permissions": []},
        {"context": "(.*)/api/v1/(.*)", "secured": true, "http_method": "all", "permissions": ["/permission/admin"]}
    ]});
    let (status, answer) = s
        .api(
            "PUT",
            &format!("{api}/resources"),
            FOO_ADMIN,
            Some(new_rules.clone()),
        )
        .await;
    assert_eq!((status, answer), (200, shown_with_guards(&new_rules)));
    let (status, _) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("alice@foo.com", "alice-password"),
            &token,
        )
        .await;
    assert_eq!(status, 200);
}

async fn the_audit_log_records_changes_and_failures_without_secrets(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    s.api(
        "POST",
        &format!("{api}/users"),
        FOO_ADMIN,
        Some(json!({"username": "dave", "password": "dave-secret-pw"})),
    )
    .await;
    s.api(
        "PUT",
        &format!("{api}/users/dave/password"),
        FOO_ADMIN,
        Some(json!({"password": "dave-newer-pw"})),
    )
    .await;
    let (_, client) = s
        .api(
            "POST",
            &format!("{api}/clients"),
            FOO_ADMIN,
            Some(json!({"client_id": "audited", "grant_types": ["client_credentials"]})),
        )
        .await;
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    s.introspect(
        "/t/foo.com/oauth2/introspect",
        ("dave@foo.com", "wrong-pw-123"),
        "x",
    )
    .await;
    let (status, log) = s
        .api("GET", &format!("{api}/audit?limit=10"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200);
    let events = log["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..4],
        [
            "user.signin_failure",
            "client.create",
            "user.password",
            "user.create"
        ],
        "{log}"
    );
    assert_eq!(events[1]["actor"], "admin@foo.com");
    assert_eq!(events[1]["target"], "audited");
    assert_eq!(events[0]["client_address"], "127.0.0.1");
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let text = log.to_string();
    for secret in [
        "dave-secret-pw",
        "dave-newer-pw",
        "wrong-pw-123",
        secret.as_str(),
        "foo-admin-password",
    ] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
    // Paging with `before`.
    let (_, older) = s
        .api(
            "GET",
            &format!("{api}/audit?limit=2&before={}", ids[1]),
            FOO_ADMIN,
            None,
        )
        .await;
    let older = older["events"].as_array().unwrap();
    assert_eq!(older.len(), 2);
    assert_eq!(older[0]["id"].as_i64().unwrap(), ids[2]);
    let (status, _) = s
        .api("GET", &format!("{api}/audit?limit=0"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 400);
    // Another tenant's log does not hold foo.com's events.
    let (_, bar) = s
        .api(
            "GET",
            "/t/bar.com/api/v1/audit",
            ("admin@bar.com", "bar-admin-password"),
            None,
        )
        .await;
    assert!(!bar.to_string().contains("dave"));
}

async fn a_client_tried_before_it_existed_works_once_registered(s: TestServer) {
    // The failed attempt leaves "late" remembered as absent.
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(("late", "x")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    let (status, created) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients",
            FOO_ADMIN,
            Some(json!({"client_id": "late", "grant_types": ["client_credentials"]})),
        )
        .await;
    assert_eq!(status, 201);
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    s.client_token("/t/foo.com/oauth2/token", ("late", &secret), None)
        .await;
}

async fn a_public_client_is_registered_without_a_secret(s: TestServer) {
    let (status, client) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients",
            FOO_ADMIN,
            Some(json!({
        "client_id": "spa", "public": true, "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://spa.foo.com/callback"]})),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(client["public"], true);
    assert!(client.get("client_secret").is_none());
    let (status, _) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients/spa/secret",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients",
            FOO_ADMIN,
            Some(json!({"client_id": "bar-client", "grant_types": ["client_credentials"]})),
        )
        .await;
    assert_eq!(status, 409, "client ids are unique across tenants");
    let (_, list) = s
        .api("GET", "/t/foo.com/api/v1/clients", FOO_ADMIN, None)
        .await;
    assert!(list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_id"] == "spa"));
    assert!(!list.to_string().contains("argon2"));
}

/// `PATCH /clients/{id}`: what it names changes, with a registration's checks; tokens
/// already issued stay; the change is audited with its fields; a client a tenant file
/// declares is the file's to change.
async fn a_client_is_edited_in_place(s: TestServer) {
    let (status, created) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients",
            FOO_ADMIN,
            Some(json!({"client_id": "edited", "name": "Reports",
                        "grant_types": ["client_credentials", "password"]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["name"].as_str(), created["managed_by"].as_str()),
        (Some("Reports"), Some("api"))
    );
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let issued = s
        .client_token("/t/foo.com/oauth2/token", ("edited", &secret), None)
        .await;
    let issued = issued["access_token"].as_str().unwrap().to_owned();
    let patch = |body: serde_json::Value| {
        s.api(
            "PATCH",
            "/t/foo.com/api/v1/clients/edited",
            FOO_ADMIN,
            Some(body),
        )
    };

    let (status, edited) = patch(
        json!({"grant_types": ["password"], "name": "Nightly reports",
                                        "redirect_uris": ["https://reports.foo.com/cb"]}),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["grant_types"], json!(["password"]));
    assert_eq!(
        edited["redirect_uris"],
        json!(["https://reports.foo.com/cb"])
    );
    assert_eq!(edited["name"], "Nightly reports");
    assert_eq!(
        edited["require_pkce"], true,
        "what the edit did not name stays"
    );
    // The grant type taken away stops grants to come, at once; the token stays.
    let refused = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(("edited", &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, &issued).await);

    // The same checks as a registration, naming the field; nothing changes.
    for (body, field) in [
        (json!({"grant_types": ["implicit"]}), "grant_types[0]"),
        (json!({"redirect_uris": ["not a uri"]}), "redirect_uris[0]"),
        (json!({"scopes": ["a b"]}), "scopes[0]"),
        (json!({"name": "x".repeat(101)}), "name"),
    ] {
        let (status, error) = patch(body).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some(field)),
            "{error}"
        );
    }
    let (status, _) = patch(json!({"secret": "x"})).await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (_, again) = s
        .api("GET", "/t/foo.com/api/v1/clients/edited", FOO_ADMIN, None)
        .await;
    assert_eq!(again["grant_types"], json!(["password"]));

    // An edit that changes nothing writes nothing; "" takes the name away.
    let (status, _) = patch(json!({"grant_types": ["password"]})).await;
    assert_eq!(status, 200);
    let (status, unnamed) = patch(json!({"name": ""})).await;
    assert_eq!(status, 200);
    assert!(unnamed.get("name").is_none(), "{unnamed}");
    let (_, audit) = s
        .api("GET", "/t/foo.com/api/v1/audit?limit=10", FOO_ADMIN, None)
        .await;
    let edits: Vec<&serde_json::Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "client.update")
        .collect();
    assert_eq!(edits.len(), 2, "{audit}");
    assert_eq!(edits[0]["detail"], "name");
    assert_eq!(edits[1]["detail"], "grant_types, redirect_uris, name");
    assert_eq!(edits[1]["target"], "edited");

    // A public client stays within what a public client may use.
    let (status, _) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients",
            FOO_ADMIN,
            Some(json!({"client_id": "edited-spa", "public": true,
                        "grant_types": ["authorization_code"],
                        "redirect_uris": ["https://spa.foo.com/cb"]})),
        )
        .await;
    assert_eq!(status, 201);
    for (body, field) in [
        (
            json!({"grant_types": ["client_credentials"]}),
            "grant_types[0]",
        ),
        (json!({"require_pkce": false}), "require_pkce"),
    ] {
        let (status, error) = s
            .api(
                "PATCH",
                "/t/foo.com/api/v1/clients/edited-spa",
                FOO_ADMIN,
                Some(body),
            )
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some(field)),
            "{error}"
        );
    }

    // A client a tenant file declares is the file's to change.
    let (status, error) = s
        .api(
            "PATCH",
            "/t/foo.com/api/v1/clients/foo-spa",
            FOO_ADMIN,
            Some(json!({"require_pkce": false})),
        )
        .await;
    assert_eq!(status, 409, "foo-spa is declared in a tenant file: {error}");
    assert_eq!(error["error"], "managed_by_file");
    let described = error["error_description"].as_str().unwrap();
    assert!(
        described.contains("foo.com.toml") && described.contains("change it there"),
        "{described}"
    );
    let (_, listed) = s
        .api("GET", "/t/foo.com/api/v1/clients/foo-spa", FOO_ADMIN, None)
        .await;
    assert_eq!(listed["managed_by"], "file");
    let (status, _) = s
        .api(
            "PATCH",
            "/t/foo.com/api/v1/clients/bar-client",
            FOO_ADMIN,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 404, "another tenant's client is not found here");
}

async fn what_a_file_declares_is_refused_and_says_where(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    let refused = |(status, body): (u16, Value)| {
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("managed_by_file")),
            "{body}"
        );
        let description = body["error_description"].as_str().unwrap().to_owned();
        assert!(
            description.ends_with("foo.com.toml; change it there"),
            "{description}"
        );
        description
    };
    let password = json!({"password": "set-by-the-api"});
    let described = refused(
        s.api(
            "PUT",
            &format!("{api}/users/alice/password"),
            FOO_ADMIN,
            Some(password),
        )
        .await,
    );
    assert!(
        described.starts_with("user \"alice\" is declared in "),
        "{described}"
    );
    refused(
        s.api(
            "PUT",
            &format!("{api}/users/alice/roles"),
            FOO_ADMIN,
            Some(json!({"roles": ["admin"]})),
        )
        .await,
    );
    refused(
        s.api("DELETE", &format!("{api}/users/alice"), FOO_ADMIN, None)
            .await,
    );
    let permissions = json!({"permissions": ["/permission"]});
    refused(
        s.api(
            "PUT",
            &format!("{api}/roles/admin"),
            FOO_ADMIN,
            Some(permissions),
        )
        .await,
    );
    refused(
        s.api("DELETE", &format!("{api}/roles/admin"), FOO_ADMIN, None)
            .await,
    );
    refused(
        s.api(
            "POST",
            &format!("{api}/clients/foo-client/secret"),
            FOO_ADMIN,
            None,
        )
        .await,
    );
    refused(
        s.api(
            "DELETE",
            &format!("{api}/clients/foo-client"),
            FOO_ADMIN,
            None,
        )
        .await,
    );
    let (_, settings) = s
        .api("GET", &format!("{api}/settings"), FOO_ADMIN, None)
        .await;
    assert_eq!(settings["managed_by"], "file");
    settings_put(&s, api, FOO_ADMIN, json!({}), 409).await;
    // Nothing changed: alice still signs in with the file's password.
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    // What files never set stays the API's: enabled, unlock, revocation.
    let (status, alice) = s
        .api(
            "PUT",
            &format!("{api}/users/alice/enabled"),
            FOO_ADMIN,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!((status, &alice["managed_by"]), (200, &json!("file")));
    let (status, _) = s
        .api(
            "POST",
            &format!("{api}/users/alice/unlock"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .api(
            "POST",
            &format!("{api}/clients/foo-client/unlock"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let revoke = json!({"token": pair["refresh_token"]});
    let (status, _) = s
        .api(
            "POST",
            &format!("{api}/tokens/revoke"),
            FOO_ADMIN,
            Some(revoke),
        )
        .await;
    assert_eq!(status, 200);
    // Every list says who owns what.
    let (_, users) = s.api("GET", &format!("{api}/users"), FOO_ADMIN, None).await;
    assert!(users["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["managed_by"] == "file"));
    let (_, roles) = s.api("GET", &format!("{api}/roles"), FOO_ADMIN, None).await;
    assert_eq!(roles["roles"][0]["managed_by"], "file");
    let (_, rules) = s
        .api("GET", &format!("{api}/resources"), FOO_ADMIN, None)
        .await;
    assert_eq!(rules["managed_by"], "api");
    s.api_user("/t/foo.com", FOO_ADMIN, "carol", "carol-password", &[])
        .await;
    let (_, carol) = s
        .api("GET", &format!("{api}/users/carol"), FOO_ADMIN, None)
        .await;
    assert_eq!(carol["managed_by"], "api");
}

/// PUTs tenant settings and checks the status; the answer's body.
async fn settings_put(
    s: &TestServer,
    api: &str,
    admin: (&str, &str),
    body: Value,
    status: u16,
) -> Value {
    let (got, answer) = s
        .api("PUT", &format!("{api}/settings"), admin, Some(body))
        .await;
    assert_eq!(got, status, "{answer}");
    answer
}

async fn a_tenant_made_through_the_api_gets_every_setting_a_file_can_give(s: TestServer) {
    let (status, _) = s.api("POST", "/api/v1/tenants", ADMIN,
        Some(json!({"domain": "set.org", "admin": {"username": "boss", "password": "boss-password"}}))).await;
    assert_eq!(status, 201);
    let (api, boss) = ("/t/set.org/api/v1", ("boss@set.org", "boss-password"));
    let (status, settings) = s.api("GET", &format!("{api}/settings"), boss, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        settings,
        json!({
            "tokens": {"access_token_ttl": 3600, "refresh_token_ttl": 86400,
                       "authorization_code_ttl": 300, "grant_max_lifetime": 2592000},
            "introspection": {"allowed_clients": []},
            "rate_limits": {"requests_per_caller": null, "requests_per_tenant": null},
            "managed_by": "api"
        })
    );
    // Checked like a tenant file, and the allowed clients against the tenant's own.
    let answer = settings_put(
        &s,
        api,
        boss,
        json!({"tokens": {"access_token_ttl": 0}}),
        400,
    )
    .await;
    assert_eq!(answer["field"], "tokens.access_token_ttl");
    let answer = settings_put(
        &s,
        api,
        boss,
        json!({"introspection": {"allowed_clients": ["nope"]}}),
        400,
    )
    .await;
    assert_eq!(answer["field"], "introspection.allowed_clients[0]");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("\"nope\""),
        "{answer}"
    );
    let foreign = json!({"introspection": {"allowed_clients": ["foo-client"]}});
    settings_put(&s, api, boss, foreign, 400).await;
    settings_put(&s, api, boss, json!({"tokens": {"access_ttl": 5}}), 400).await;
    settings_put(
        &s,
        api,
        boss,
        json!({"rate_limits": {"requests_per_caller": -1}}),
        400,
    )
    .await;
    // A resource server that may introspect every token, and shorter tokens.
    let rs_secret = s.api_client("/t/set.org", boss, "set-rs").await;
    let app_secret = s.api_client("/t/set.org", boss, "set-app").await;
    let wanted = json!({
        "tokens": {"access_token_ttl": 120, "refresh_token_ttl": 600,
                   "authorization_code_ttl": 60, "grant_max_lifetime": 3600},
        "introspection": {"allowed_clients": ["set-rs"]},
        "rate_limits": {"requests_per_caller": 1000, "requests_per_tenant": null}
    });
    let answer = settings_put(&s, api, boss, wanted.clone(), 200).await;
    let mut shown = wanted.clone();
    shown["managed_by"] = json!("api");
    assert_eq!(answer, shown);
    let (_, now_set) = s.api("GET", &format!("{api}/settings"), boss, None).await;
    assert_eq!(now_set, shown);
    let token = s
        .client_token("/t/set.org/oauth2/token", ("set-app", &app_secret), None)
        .await;
    assert_eq!(token["expires_in"], 120);
    let r = s
        .post_form(
            "/t/set.org/oauth2/introspect",
            Some(("set-rs", &rs_secret)),
            &[("token", token_of(&token).as_str())],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["active"], true);
    // The same PUT again changes nothing and records nothing; the change was audited
    // with the keys it changed.
    settings_put(&s, api, boss, wanted, 200).await;
    let (_, log) = s.api("GET", &format!("{api}/audit"), boss, None).await;
    let updates: Vec<&Value> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "settings.update")
        .collect();
    assert_eq!(updates.len(), 1, "{log}");
    assert_eq!(
        updates[0]["detail"],
        "tokens.access_token_ttl, tokens.refresh_token_ttl, tokens.authorization_code_ttl, \
         tokens.grant_max_lifetime, introspection.allowed_clients, rate_limits.requests_per_caller"
    );
    // The settings are the tenant managers': a user without the permission is refused.
    s.api_user("/t/set.org", boss, "plain", "plain-password", &[])
        .await;
    let (status, _) = s
        .api(
            "GET",
            &format!("{api}/settings"),
            ("plain@set.org", "plain-password"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Rules of the tenant's own that say nothing of settings or keys leave their guards
    // in place; any other path they do not match asks for nothing beyond signing in.
    let introspection_only = json!({"resources": [{"context": "(.*)/oauth2/introspect(.*)",
        "secured": true, "http_method": "all", "permissions": [VIEW]}]});
    let (status, _) = s
        .api(
            "PUT",
            &format!("{api}/resources"),
            boss,
            Some(introspection_only),
        )
        .await;
    assert_eq!(status, 200);
    let plain = ("plain@set.org", "plain-password");
    for (path, status) in [("settings", 403), ("keys", 403), ("users", 200)] {
        let (got, _) = s.api("GET", &format!("{api}/{path}"), plain, None).await;
        assert_eq!(got, status, "{path}");
    }
}

/// Every item of a list, page by page from `path` (which has its query already),
/// checking that each page but the last is full and says where the next one starts.
async fn every_page(s: &TestServer, path: &str, key: &str, admin: (&str, &str)) -> Vec<String> {
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..100 {
        let url = match &next {
            Some(cursor) => format!("{path}&after={cursor}"),
            None => path.to_owned(),
        };
        let (status, page) = s.api("GET", &url, admin, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page[key].as_array().unwrap();
        names.extend(items.iter().map(|i| {
            let name = i
                .get("username")
                .or(i.get("client_id"))
                .or(i.get("name"))
                .or(i.get("domain"));
            name.or(i.get("id"))
                .unwrap()
                .to_string()
                .trim_matches('"')
                .to_owned()
        }));
        match page.get("next") {
            Some(cursor) => {
                assert_eq!(items.len(), 2, "a page with a next is full: {page}");
                next = Some(cursor.as_str().unwrap().to_owned());
            }
            None => return names,
        }
    }
    panic!("the pages never ended");
}

async fn lists_page_by_cursor_search_and_filters(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    for name in ["bob-1", "bob-2", "bob-3", "Bob-4", "zed"] {
        s.api_user("/t/foo.com", FOO_ADMIN, name, "long-password", &[])
            .await;
    }
    s.api(
        "PUT",
        &format!("{api}/users/bob-2/enabled"),
        FOO_ADMIN,
        Some(json!({"enabled": false})),
    )
    .await;
    // All of them, two at a time, in byte order (upper case first).
    let all = every_page(&s, &format!("{api}/users?limit=2"), "users", FOO_ADMIN).await;
    assert_eq!(
        all,
        ["Bob-4", "admin", "alice", "bob-1", "bob-2", "bob-3", "zed"]
    );
    let bobs = every_page(
        &s,
        &format!("{api}/users?limit=2&q=bob-"),
        "users",
        FOO_ADMIN,
    )
    .await;
    assert_eq!(bobs, ["bob-1", "bob-2", "bob-3"]);
    let enabled = every_page(
        &s,
        &format!("{api}/users?limit=2&q=bob&enabled=true"),
        "users",
        FOO_ADMIN,
    )
    .await;
    assert_eq!(enabled, ["bob-1", "bob-3"]);
    let unlocked = every_page(
        &s,
        &format!("{api}/users?limit=2&locked=false&q=z"),
        "users",
        FOO_ADMIN,
    )
    .await;
    assert_eq!(unlocked, ["zed"]);
    let (_, none) = s
        .api("GET", &format!("{api}/users?locked=true"), FOO_ADMIN, None)
        .await;
    assert_eq!(none, json!({"users": []}));
    // Clients, roles and tenants page the same way.
    let clients = every_page(
        &s,
        &format!("{api}/clients?limit=2&q=foo-"),
        "clients",
        FOO_ADMIN,
    )
    .await;
    assert_eq!(
        clients,
        [
            "foo-allowed",
            "foo-client",
            "foo-narrow",
            "foo-nocode",
            "foo-other",
            "foo-spa",
            "foo-web"
        ]
    );
    let roles = every_page(&s, &format!("{api}/roles?limit=2"), "roles", FOO_ADMIN).await;
    assert_eq!(roles, ["admin"]);
    let tenants = every_page(&s, "/api/v1/tenants?limit=2", "tenants", ADMIN).await;
    assert_eq!(tenants, ["bar.com", "carbon.super", "foo.com", "short.com"]);

    // Bad pages are 400s naming the parameter.
    let refused = async |path: &str, field: &str| {
        let (status, answer) = s
            .api("GET", &format!("{api}/{path}"), FOO_ADMIN, None)
            .await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{path}: {answer}"
        );
    };
    refused("users?limit=0", "limit").await;
    refused("users?limit=10000", "limit").await;
    refused("users?limit=ten", "limit").await;
    refused("users?after=not-a-cursor", "after").await;
    refused("users?q=a%00b", "q").await;
    refused("users?q=a%0Ab", "q").await;
    refused("users?enabled=yes", "enabled").await;
    refused("users?sort=name", "sort").await;
    refused("roles?enabled=true", "enabled").await;
    refused("clients/foo-client?limit=1", "limit").await;
    // A cursor is good for its own list and tenant only.
    let (_, page) = s
        .api("GET", &format!("{api}/clients?limit=1"), FOO_ADMIN, None)
        .await;
    let cursor = page["next"].as_str().unwrap().to_owned();
    refused(&format!("users?after={cursor}"), "after").await;
    let (status, _) = s
        .api(
            "GET",
            &format!("/t/bar.com/api/v1/clients?after={cursor}"),
            ("admin@bar.com", "bar-admin-password"),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .api(
            "GET",
            &format!("{api}/clients?after={cursor}"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);

    // The audit log: filters narrow it, and its cursor pages them.
    let creations = every_page(
        &s,
        &format!("{api}/audit?limit=2&action=user.create"),
        "events",
        FOO_ADMIN,
    )
    .await;
    assert_eq!(creations.len(), 5);
    let (_, page) = s
        .api(
            "GET",
            &format!("{api}/audit?action=user.create&target=zed"),
            FOO_ADMIN,
            None,
        )
        .await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(
        (events[0]["actor"].as_str(), events[0]["target"].as_str()),
        (Some("admin@foo.com"), Some("zed"))
    );
    let at = events[0]["at"].as_i64().unwrap();
    let (_, page) = s
        .api(
            "GET",
            &format!(
                "{api}/audit?actor=admin@foo.com&since={}&until={}",
                at + 3600,
                at + 7200
            ),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(page, json!({"events": []}));
    let (_, page) = s
        .api(
            "GET",
            &format!("{api}/audit?actor=nobody@foo.com"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(page, json!({"events": []}));
    refused("audit?since=10&until=5", "since").await;
    refused("audit?since=yesterday", "since").await;
    refused(&format!("audit?after={cursor}"), "after").await;
}

async fn bulk_actions_say_what_they_did_to_each_user(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    s.api_user("/t/foo.com", FOO_ADMIN, "carol", "carol-password", &[])
        .await;
    s.api_user("/t/foo.com", FOO_ADMIN, "dave", "dave-password", &[])
        .await;
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("carol", "carol-password"),
        )
        .await;
    let bulk = async |body: Value| {
        s.api("POST", &format!("{api}/users/bulk"), FOO_ADMIN, Some(body))
            .await
    };
    let (status, answer) =
        bulk(json!({"action": "disable", "usernames": ["carol", "dave", "nobody", "alice"]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"results": [
            {"username": "carol", "outcome": "disabled"},
            {"username": "dave", "outcome": "disabled"},
            {"username": "nobody", "outcome": "not_found"},
            {"username": "alice", "outcome": "disabled"}
        ]})
    );
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &token_of(&pair)).await);
    let (_, alice) = s
        .api("GET", &format!("{api}/users/alice"), FOO_ADMIN, None)
        .await;
    assert_eq!(alice["enabled"], false);
    let (_, answer) = bulk(json!({"action": "enable", "usernames": ["alice"]})).await;
    assert_eq!(answer["results"][0]["outcome"], "enabled");
    let (_, answer) = bulk(json!({"action": "unlock", "usernames": ["dave"]})).await;
    assert_eq!(answer["results"][0]["outcome"], "unlocked");
    // A file's user is not deleted; the others are, in the same call.
    let (_, answer) =
        bulk(json!({"action": "delete", "usernames": ["alice", "carol", "dave"]})).await;
    assert_eq!(
        answer,
        json!({"results": [
            {"username": "alice", "outcome": "managed_by_file"},
            {"username": "carol", "outcome": "deleted"},
            {"username": "dave", "outcome": "deleted"}
        ]})
    );
    let (status, _) = s
        .api("GET", &format!("{api}/users/carol"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .api("GET", &format!("{api}/users/alice"), FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200);
    // Each user is audited as the single call would be.
    let (_, log) = s
        .api(
            "GET",
            &format!("{api}/audit?action=user.delete"),
            FOO_ADMIN,
            None,
        )
        .await;
    let targets: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["dave", "carol"]);
    assert_eq!(log["events"][0]["detail"], "bulk");

    // Bad lists change nothing.
    let too_many: Vec<String> = (0..1001).map(|i| format!("user-{i}")).collect();
    for (body, field) in [
        (
            json!({"action": "disable", "usernames": too_many}),
            Some("usernames"),
        ),
        (
            json!({"action": "disable", "usernames": []}),
            Some("usernames"),
        ),
        (
            json!({"action": "disable", "usernames": ["alice", "alice"]}),
            Some("usernames[1]"),
        ),
        (
            json!({"action": "disable", "usernames": ["a b"]}),
            Some("usernames[0]"),
        ),
        (json!({"action": "explode", "usernames": ["alice"]}), None),
        (
            json!({"action": "disable", "usernames": ["alice"], "force": true}),
            None,
        ),
        (json!({"action": "disable", "usernames": "alice"}), None),
    ] {
        let (status, answer) = bulk(body.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, field),
            "{body}: {answer}"
        );
    }
    let (_, alice) = s
        .api("GET", &format!("{api}/users/alice"), FOO_ADMIN, None)
        .await;
    assert_eq!(alice["enabled"], true);
}

async fn a_lookup_tells_the_story_of_the_grant(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    s.api_user("/t/foo.com", FOO_ADMIN, "carol", "carol-password", &[])
        .await;
    let first = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("carol", "carol-password"),
        )
        .await;
    let old_refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old_refresh.as_str()),
    ];
    let r = s
        .post_form("/t/foo.com/oauth2/token", Some(FOO_CLIENT), &refresh)
        .await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    // The spent refresh token again: the whole grant is revoked for reuse.
    let r = s
        .post_form("/t/foo.com/oauth2/token", Some(FOO_CLIENT), &refresh)
        .await;
    assert_eq!(r.status(), 400);
    let (status, info) = s
        .api(
            "POST",
            &format!("{api}/tokens/lookup"),
            FOO_ADMIN,
            Some(json!({"token": token_of(&second)})),
        )
        .await;
    assert_eq!(status, 200, "{info}");
    let grant = &info["grant"];
    assert_eq!(
        (grant["client_id"].as_str(), grant["username"].as_str()),
        (Some("foo-client"), Some("carol@foo.com"))
    );
    assert!(grant["started_at"].as_i64().unwrap() > 0);
    let tokens = grant["tokens"].as_array().unwrap();
    // Two pairs in the order they were issued; the reuse revoked all four (the first
    // pair's INACTIVE `refreshed` included: INACTIVE → REVOKED is allowed).
    let mut story: Vec<(&str, &str, &str)> = tokens
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap(),
                t["state"].as_str().unwrap(),
                t["state_reason"].as_str().unwrap(),
            )
        })
        .collect();
    story.sort_unstable();
    let (revoked, reuse) = ("REVOKED", "refresh_reuse");
    assert_eq!(
        story,
        [
            ("access_token", revoked, reuse),
            ("access_token", revoked, reuse),
            ("refresh_token", revoked, reuse),
            ("refresh_token", revoked, reuse),
        ]
    );
    let issued: Vec<i64> = tokens
        .iter()
        .map(|t| t["issued_at"].as_i64().unwrap())
        .collect();
    assert!(issued.windows(2).all(|w| w[0] <= w[1]), "{issued:?}");
    let reused = &tokens[3];
    assert_eq!(
        (reused["ended_by"].as_str(), reused["ended_from"].as_str()),
        (Some("client:foo-client"), Some("127.0.0.1"))
    );
    assert!(reused["ended_at"].as_i64().unwrap() >= reused["issued_at"].as_i64().unwrap());
    assert!(tokens
        .iter()
        .all(|t| t["jti"].as_str().is_some_and(|j| !j.is_empty())));
    // No token's text in the story.
    let text = info.to_string();
    for secret in [token_of(&first), old_refresh.clone(), token_of(&second)] {
        assert!(!text.contains(&secret));
    }
    assert_eq!(grant["admin_actions"], json!([]));

    // A user's live grants, newest first; an admin revokes one by its id.
    let live = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("carol", "carol-password"),
        )
        .await;
    let (status, grants) = s
        .api(
            "GET",
            &format!("{api}/tokens?username=carol"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200, "{grants}");
    let listed = grants["grants"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "the reused grant is over: {grants}");
    assert_eq!(
        (
            listed[0]["client_id"].as_str(),
            listed[0]["active_tokens"].as_i64()
        ),
        (Some("foo-client"), Some(2))
    );
    let grant_id = listed[0]["grant_id"].as_str().unwrap().to_owned();
    let (_, by_client) = s
        .api(
            "GET",
            &format!("{api}/tokens?client_id=foo-client&limit=1"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(by_client["grants"][0]["grant_id"], grant_id.as_str());
    let (_, revoked) = s
        .api(
            "POST",
            &format!("{api}/tokens/revoke"),
            FOO_ADMIN,
            Some(json!({"grant_id": grant_id})),
        )
        .await;
    assert_eq!(revoked, json!({"revoked": 2}));
    let (_, grants) = s
        .api(
            "GET",
            &format!("{api}/tokens?username=carol"),
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(grants, json!({"grants": []}));
    // The revocation is the admin action of that grant's story.
    let (_, info) = s
        .api(
            "POST",
            &format!("{api}/tokens/lookup"),
            FOO_ADMIN,
            Some(json!({"token": token_of(&live)})),
        )
        .await;
    let actions = info["grant"]["admin_actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{info}");
    assert_eq!(
        (actions[0]["action"].as_str(), actions[0]["actor"].as_str()),
        (Some("tokens.revoke"), Some("admin@foo.com"))
    );
    assert_eq!(info["grant"]["tokens"][0]["ended_by"], "admin@foo.com");
    for bad in [
        "tokens",
        "tokens?username=carol&client_id=foo-client",
        "tokens?username=carol&q=x",
        "tokens?username=carol&after=nope",
    ] {
        let (status, _) = s.api("GET", &format!("{api}/{bad}"), FOO_ADMIN, None).await;
        assert_eq!(status, 400, "{bad}");
    }
}

/// Every name and event of a list, page by page from `path`, with the page size it asks.
async fn walk(s: &TestServer, path: &str, key: &str, field: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut url = path.to_owned();
    loop {
        let (status, page) = s.api("GET", &url, ADMIN, None).await;
        assert_eq!(status, 200, "{url}: {page}");
        all.extend(
            page[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i[field].clone()),
        );
        match page["next"].as_str() {
            Some(next) => url = format!("{path}&after={next}"),
            None => return all,
        }
    }
}

async fn pages_are_right_at_100k_users_and_1m_events(s: TestServer) {
    let super_tenant = s.gateway.tenant_for_request(None).await.unwrap();
    // A million seconds, ending a day ago: inside the audit retention, or the purge
    // would take events while the pages are read.
    let first_at = portcullis::service::now() - 1_000_000 - 86_400;
    common::fill::fill_lists(
        &s.database.url,
        super_tenant.id.get(),
        100_000,
        1_000_000,
        first_at,
    )
    .await;
    // Every user once, in order, across pages of 1,000.
    let names = walk(&s, "/api/v1/users?limit=1000&q=user-", "users", "username").await;
    assert_eq!(names.len(), 100_000);
    assert_eq!(
        (names[0].as_str(), names[99_999].as_str()),
        (Some("user-000000"), Some("user-099999"))
    );
    assert!(names.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
    let prefix = walk(
        &s,
        "/api/v1/users?limit=30&q=user-0421",
        "users",
        "username",
    )
    .await;
    let expected: Vec<String> = (42_100..42_200).map(|i| format!("user-{i:06}")).collect();
    assert_eq!(
        prefix,
        expected.iter().map(|n| json!(n)).collect::<Vec<_>>()
    );
    // The rare action's 100 events, newest first, across pages of 7.
    let rotations = walk(
        &s,
        "/api/v1/audit?limit=7&action=key.rotate",
        "events",
        "at",
    )
    .await;
    let expected: Vec<Value> = (0..100)
        .rev()
        .map(|k| json!(first_at + k * 10_000))
        .collect();
    assert_eq!(rotations, expected);
    // A page deep in the log, and one actor's within a time window.
    let (_, deep) = s
        .api("GET", "/api/v1/audit?limit=3&before=500001", ADMIN, None)
        .await;
    let ids: Vec<i64> = deep["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]) && ids[0] < 500_001,
        "{ids:?}"
    );
    let (since, until) = (first_at + 500_000, first_at + 509_999);
    let window = format!("/api/v1/audit?limit=1000&actor=ops&since={since}&until={until}");
    let ops = walk(&s, &window, "events", "target").await;
    assert_eq!(ops.len(), 100);
}

on_both_backends!(crate::common::TestServer::for_backend;
    a_tenant_admin_runs_users_and_roles,
    bad_admin_input_is_400_naming_the_field,
    an_old_password_and_an_old_secret_fail_at_once,
    lifecycle_events_move_tokens_to_their_states,
    a_deactivated_tenant_disappears_with_its_tokens,
    the_super_admin_creates_tenants_that_work_at_once,
    admins_are_confined_to_their_tenant,
    repeated_failures_lock_users_and_clients,
    resource_rules_are_replaced_and_apply_at_once,
    the_audit_log_records_changes_and_failures_without_secrets,
    a_client_tried_before_it_existed_works_once_registered,
    a_public_client_is_registered_without_a_secret,
    a_client_is_edited_in_place,
    what_a_file_declares_is_refused_and_says_where,
    a_tenant_made_through_the_api_gets_every_setting_a_file_can_give,
    lists_page_by_cursor_search_and_filters,
    bulk_actions_say_what_they_did_to_each_user,
    a_lookup_tells_the_story_of_the_grant,
    pages_are_right_at_100k_users_and_1m_events,
);

/// What a restart does to admin API changes: the files win for what they declare, and
/// nothing else is touched.
async fn restart_reconciles(s: &TestServer) {
    let reconciled =
        portcullis::service::bootstrap::reconcile(s.gateway.config(), s.gateway.store(), None)
            .await
            .unwrap();
    s.gateway.settle(reconciled).await.unwrap();
}

async fn a_restart_restores_what_files_declare_and_keeps_the_rest(s: TestServer) {
    let api = "/t/foo.com/api/v1";
    // File-declared: alice; API-created: erin; API-set resource rules.
    s.api_user("/t/foo.com", FOO_ADMIN, "erin", "erin-password", &[])
        .await;
    let rules = json!({"resources": [{"context": "(.*)/api/v1/(.*)", "secured": true, "http_method": "all", "permissions": ["/permission/admin"]}]});
    s.api(
        "PUT",
        &format!("{api}/resources"),
        FOO_ADMIN,
        Some(rules.clone()),
    )
    .await;
    s.api(
        "PUT",
        &format!("{api}/users/alice/enabled"),
        FOO_ADMIN,
        Some(json!({"enabled": false})),
    )
    .await;
    restart_reconciles(&s).await;
    // Alice is still the file's, with the enabled flag the API gave her; erin and the
    // rules stay the API's.
    let (_, alice) = s
        .api("GET", &format!("{api}/users/alice"), FOO_ADMIN, None)
        .await;
    assert_eq!(
        (&alice["enabled"], &alice["managed_by"]),
        (&json!(false), &json!("file"))
    );
    s.api(
        "PUT",
        &format!("{api}/users/alice/enabled"),
        FOO_ADMIN,
        Some(json!({"enabled": true})),
    )
    .await;
    s.password_token(
        "/t/foo.com/oauth2/token",
        FOO_CLIENT,
        ("alice", "alice-password"),
    )
    .await;
    s.password_token(
        "/t/foo.com/oauth2/token",
        FOO_CLIENT,
        ("erin", "erin-password"),
    )
    .await;
    let (_, kept) = s
        .api("GET", &format!("{api}/resources"), FOO_ADMIN, None)
        .await;
    assert_eq!(kept, shown_with_guards(&rules));

    // A file that stops declaring alice and foo-other gives them to the API at the next
    // start: they stay, and the API may now change them.
    let path = s.gateway.config().tenants.dir.join("foo.com.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = common::without_block(&text, "username = \"alice\"");
    let text = common::without_block(&text, "client_id = \"foo-other\"");
    std::fs::write(&path, text).unwrap();
    restart_reconciles(&s).await;
    let (_, alice) = s
        .api("GET", &format!("{api}/users/alice"), FOO_ADMIN, None)
        .await;
    assert_eq!(alice["managed_by"], "api");
    let (status, _) = s
        .api(
            "PUT",
            &format!("{api}/users/alice/password"),
            FOO_ADMIN,
            Some(json!({"password": "set-by-the-api"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, other) = s
        .api("GET", &format!("{api}/clients/foo-other"), FOO_ADMIN, None)
        .await;
    assert_eq!(other["managed_by"], "api");
    let (_, foo_client) = s
        .api("GET", &format!("{api}/clients/foo-client"), FOO_ADMIN, None)
        .await;
    assert_eq!(foo_client["managed_by"], "file");
}

on_both_backends!(crate::common::TestServer::for_backend;
    a_restart_restores_what_files_declare_and_keeps_the_rest,
);
