//! Every kind of committed change is seen by the very next request, although the
//! principal, client, tenant or token it touches was cached just before: each store
//! write reports what it changed, and one function applies that to every cache.

mod common;

use common::TestServer;
use serde_json::json;

const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");
const ALICE: (&str, &str) = ("alice", "alice-password");
const VIEW: &str = "/permission/admin/manage/identity/applicationmgt/view";
const TOKEN: &str = "/t/foo.com/oauth2/token";
const INTROSPECT: &str = "/t/foo.com/oauth2/introspect";

/// A token of alice's, introspected once so that it is cached ACTIVE.
async fn cached_token_of_alice(s: &TestServer) -> (String, String) {
    let pair = s.password_token(TOKEN, FOO_CLIENT, ALICE).await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
    (access, refresh)
}

/// The status of a password grant for alice with `password`.
async fn alice_signs_in(s: &TestServer, password: &str) -> u16 {
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", password),
    ];
    let response = s.post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    response.status().as_u16()
}

/// A user `bob` of foo.com holding the role `viewer` with the introspection permission,
/// who has just introspected (so he, his permissions and the rules are cached).
async fn cached_viewer(s: &TestServer) -> (&'static str, &'static str) {
    let role = json!({"name": "viewer", "permissions": [VIEW]});
    let (status, _) = s
        .api("POST", "/t/foo.com/api/v1/roles", FOO_ADMIN, Some(role))
        .await;
    assert_eq!(status, 201);
    let bob = json!({"username": "bob", "password": "bob-password", "roles": ["viewer"]});
    let (status, _) = s
        .api("POST", "/t/foo.com/api/v1/users", FOO_ADMIN, Some(bob))
        .await;
    assert_eq!(status, 201);
    let caller = ("bob@foo.com", "bob-password");
    let (status, _) = s.introspect(INTROSPECT, caller, "unknown-token").await;
    assert_eq!(status, 200);
    caller
}

async fn a_revocation_is_seen_at_once(s: TestServer) {
    let (access, refresh) = cached_token_of_alice(&s).await;
    let response = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(FOO_CLIENT),
            &[("token", &refresh)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
}

async fn a_refresh_is_seen_at_once(s: TestServer) {
    let (access, refresh) = cached_token_of_alice(&s).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
    let response = s.post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    assert_eq!(response.status(), 200);
    let next: serde_json::Value = response.json().await.unwrap();
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
    assert!(
        s.is_active(
            "/t/foo.com",
            FOO_ADMIN,
            next["access_token"].as_str().unwrap()
        )
        .await
    );
    // The spent refresh token presented again revokes the whole grant at once.
    let again = s.post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    assert_eq!(again.status(), 400);
    assert!(
        !s.is_active(
            "/t/foo.com",
            FOO_ADMIN,
            next["access_token"].as_str().unwrap()
        )
        .await
    );
}

async fn a_password_change_is_seen_at_once(s: TestServer) {
    let (access, _) = cached_token_of_alice(&s).await;
    let body = json!({"password": "a-new-password"});
    let (status, _) = s
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/alice/password",
            FOO_ADMIN,
            Some(body),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(alice_signs_in(&s, ALICE.1).await, 400);
    assert_eq!(alice_signs_in(&s, "a-new-password").await, 200);
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
}

async fn a_disable_is_seen_at_once(s: TestServer) {
    let (access, _) = cached_token_of_alice(&s).await;
    let body = json!({"enabled": false});
    let (status, _) = s
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/alice/enabled",
            FOO_ADMIN,
            Some(body),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(alice_signs_in(&s, ALICE.1).await, 400);
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
}

async fn a_user_delete_is_seen_at_once(s: TestServer) {
    let (access, _) = cached_token_of_alice(&s).await;
    let (status, _) = s
        .api("DELETE", "/t/foo.com/api/v1/users/alice", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(alice_signs_in(&s, ALICE.1).await, 400);
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
}

async fn a_secret_rotation_is_seen_at_once(s: TestServer) {
    // Twice, so that the old secret is remembered as verified.
    s.client_token(TOKEN, FOO_CLIENT, None).await;
    s.client_token(TOKEN, FOO_CLIENT, None).await;
    let (status, rotated) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients/foo-client/secret",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let form = [("grant_type", "client_credentials")];
    let old = s.post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    assert_eq!(old.status(), 401);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    s.client_token(TOKEN, ("foo-client", new_secret), None)
        .await;
}

async fn a_client_delete_is_seen_at_once(s: TestServer) {
    let (access, _) = cached_token_of_alice(&s).await;
    let (status, _) = s
        .api(
            "DELETE",
            "/t/foo.com/api/v1/clients/foo-client",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let form = [("grant_type", "client_credentials")];
    let refused = s.post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    assert_eq!(refused.status(), 401);
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
}

async fn a_client_registered_after_a_failed_attempt_is_seen_at_once(s: TestServer) {
    let query = common::encode_form(&[
        ("response_type", "code"),
        ("client_id", "late-spa"),
        ("redirect_uri", "https://late.foo.com/cb"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]);
    let url = s.url(&format!("/t/foo.com/oauth2/authorize?{query}"));
    // The id is remembered as absent after this request.
    let unknown = s.client.get(&url).send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    let body = json!({
        "client_id": "late-spa",
        "public": true,
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://late.foo.com/cb"],
    });
    let (status, _) = s
        .api("POST", "/t/foo.com/api/v1/clients", FOO_ADMIN, Some(body))
        .await;
    assert_eq!(status, 201);
    let sign_in_page = s.client.get(&url).send().await.unwrap();
    assert_eq!(sign_in_page.status(), 200);
}

async fn a_role_change_is_seen_at_once(s: TestServer) {
    let bob = cached_viewer(&s).await;
    let narrower = json!({"permissions": ["/permission/admin/monitor"]});
    let (status, _) = s
        .api(
            "PUT",
            "/t/foo.com/api/v1/roles/viewer",
            FOO_ADMIN,
            Some(narrower),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.introspect(INTROSPECT, bob, "unknown-token").await.0, 403);
}

async fn a_role_delete_is_seen_at_once(s: TestServer) {
    let bob = cached_viewer(&s).await;
    let (status, _) = s
        .api("DELETE", "/t/foo.com/api/v1/roles/viewer", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(s.introspect(INTROSPECT, bob, "unknown-token").await.0, 403);
}

async fn a_rules_change_is_seen_at_once(s: TestServer) {
    let bob = cached_viewer(&s).await;
    let (_, rules) = s
        .api("GET", "/t/foo.com/api/v1/resources", FOO_ADMIN, None)
        .await;
    let mut rules = rules["resources"].as_array().unwrap().clone();
    for rule in &mut rules {
        if rule["context"] == "(.*)/oauth2/introspect(.*)" {
            rule["permissions"] = json!(["/permission/admin/introspect-only"]);
        }
    }
    let (status, _) = s
        .api(
            "PUT",
            "/t/foo.com/api/v1/resources",
            FOO_ADMIN,
            Some(json!({ "resources": rules })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.introspect(INTROSPECT, bob, "unknown-token").await.0, 403);
}

async fn tenant_creation_and_deactivation_are_seen_at_once(s: TestServer) {
    let boss = ("boss@new.org", "boss-password");
    // Unknown before: the path is a 404.
    let (status, _) = s.api("GET", "/t/new.org/api/v1/users", boss, None).await;
    assert_eq!(status, 404);
    let body = json!({"domain": "new.org", "admin": {"username": "boss", "password": boss.1}});
    let (status, _) = s
        .api("POST", "/api/v1/tenants", common::super_admin(), Some(body))
        .await;
    assert_eq!(status, 201);
    let (status, _) = s.api("GET", "/t/new.org/api/v1/users", boss, None).await;
    assert_eq!(status, 200);
    let (status, _) = s
        .api(
            "DELETE",
            "/api/v1/tenants/new.org",
            common::super_admin(),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.api("GET", "/t/new.org/api/v1/users", boss, None).await;
    assert_eq!(status, 404);
}

on_both_backends!(crate::common::TestServer::for_backend;
    a_revocation_is_seen_at_once,
    a_refresh_is_seen_at_once,
    a_password_change_is_seen_at_once,
    a_disable_is_seen_at_once,
    a_user_delete_is_seen_at_once,
    a_secret_rotation_is_seen_at_once,
    a_client_delete_is_seen_at_once,
    a_client_registered_after_a_failed_attempt_is_seen_at_once,
    a_role_change_is_seen_at_once,
    a_role_delete_is_seen_at_once,
    a_rules_change_is_seen_at_once,
    tenant_creation_and_deactivation_are_seen_at_once,
);
