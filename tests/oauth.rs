//! End-to-end: the token, introspection and revocation endpoints against the real TLS
//! server, on SQLite and on PostgreSQL.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestServer, ADMIN_PASSWORD};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);
const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const BAR_ADMIN: (&str, &str) = ("admin@bar.com", "bar-admin-password");
const SUPER_CLIENT: (&str, &str) = ("super-client", "super-secret");
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");
const FOO_OTHER: (&str, &str) = ("foo-other", "other-secret");
const FOO_ALLOWED: (&str, &str) = ("foo-allowed", "allowed-secret");

fn token_of(v: &Value) -> &str {
    v["access_token"].as_str().expect("access_token")
}

fn refresh_of(v: &Value) -> &str {
    v["refresh_token"].as_str().expect("refresh_token")
}

async fn wso2_super_tenant_session(s: TestServer) {
    // Get a valid token.
    let issued = s.client_token("/oauth2/token", SUPER_CLIENT, None).await;
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["expires_in"], 3600);
    assert!(
        issued.get("refresh_token").is_none(),
        "client credentials get no refresh token"
    );
    // Validate it as admin.
    let (status, body) = s
        .introspect("/oauth2/introspect", ADMIN, token_of(&issued))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "super-client");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], s.gateway.config().server.public_url.as_str());
    assert!(body["exp"].is_i64() && body["iat"].is_i64() && body["nbf"].is_i64());
    assert_eq!(
        body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(),
        3600
    );
    // With a scope.
    let scoped = s
        .client_token("/oauth2/token", SUPER_CLIENT, Some("test1 test2"))
        .await;
    assert_eq!(scoped["scope"], "test1 test2");
    let (_, body) = s
        .introspect("/oauth2/introspect", ADMIN, token_of(&scoped))
        .await;
    assert_eq!(body["scope"], "test1 test2");
    // An invalid token: exactly {"active": false}.
    let (status, body) = s
        .introspect(
            "/oauth2/introspect",
            ADMIN,
            "fbc4e794-23db-3394-b1e5-f2c3e511d01f",
        )
        .await;
    assert_eq!((status, body), (200, json!({"active": false})));
    // An empty token.
    let (status, body) = s.introspect("/oauth2/introspect", ADMIN, "").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
}

async fn wso2_tenant_session(s: TestServer) {
    // As on the WSO2 page: the tenant's client at the super tenant's token endpoint.
    let issued = s.client_token("/oauth2/token", FOO_CLIENT, None).await;
    let (status, body) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, token_of(&issued))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "foo-client");
    assert_eq!(
        body["iss"],
        format!("{}/t/foo.com", s.gateway.config().server.public_url)
    );
    // The same with a hand-made Authorization header.
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode("admin@foo.com:foo-admin-password");
    let response = s
        .client
        .post(s.url("/t/foo.com/oauth2/introspect"))
        .header("Authorization", format!("Basic {basic}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}&token_type_hint=bearer",
            token_of(&issued)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["active"], true);
    // At the tenant's own token endpoint, with a scope.
    let scoped = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, Some("test1 test2"))
        .await;
    let (_, body) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, token_of(&scoped))
        .await;
    assert_eq!(body["scope"], "test1 test2");
    // Invalid and empty tokens.
    let (status, body) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, "nope")
        .await;
    assert_eq!((status, body), (200, json!({"active": false})));
    let (status, body) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, "")
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

async fn a_tenant_path_accepts_only_that_tenants_clients(s: TestServer) {
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(SUPER_CLIENT),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Basic realm="));
    let r = s
        .post_form(
            "/t/bar.com/oauth2/token",
            Some(FOO_CLIENT),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(SUPER_CLIENT),
            &[("token", "x")],
        )
        .await;
    assert_eq!(r.status(), 401);
}

async fn tokens_are_isolated_between_tenants(s: TestServer) {
    let foo_token = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    let foo_token = token_of(&foo_token);
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, foo_token).await);
    // Another tenant's admin sees nothing, and neither does the super tenant's.
    assert!(!s.is_active("/t/bar.com", BAR_ADMIN, foo_token).await);
    assert!(!s.is_active("", ADMIN, foo_token).await);
    // A user of one tenant does not authenticate at another's paths.
    let (status, _) = s
        .introspect("/t/bar.com/oauth2/introspect", FOO_ADMIN, foo_token)
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .introspect("/oauth2/introspect", FOO_ADMIN, foo_token)
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .introspect("/t/foo.com/oauth2/introspect", ADMIN, foo_token)
        .await;
    assert_eq!(status, 401);
    // A super tenant's token is inactive at a tenant.
    let super_token = s.client_token("/oauth2/token", SUPER_CLIENT, None).await;
    assert!(
        !s.is_active("/t/foo.com", FOO_ADMIN, token_of(&super_token))
            .await
    );
    // Another tenant's client cannot revoke it.
    let r = s
        .post_form(
            "/t/bar.com/oauth2/revoke",
            Some(("bar-client", "bar-secret")),
            &[("token", foo_token)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, foo_token).await);
}

async fn unknown_tenants_are_404_with_json(s: TestServer) {
    for path in [
        "/t/nope.com/oauth2/introspect",
        "/t/nope.com/oauth2/token",
        "/t/nope.com/.well-known/oauth-authorization-server",
    ] {
        let r = s.post_form(path, Some(ADMIN), &[("token", "x")]).await;
        let status = r.status();
        assert!(status == 404 || status == 405, "{path}: {status}");
    }
    let r = s
        .post_form(
            "/t/nope.com/oauth2/introspect",
            Some(ADMIN),
            &[("token", "x")],
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "tenant_not_found"
    );
}

async fn user_callers_need_the_introspection_permission(s: TestServer) {
    let token = s.client_token("/oauth2/token", SUPER_CLIENT, None).await;
    let token = token_of(&token);
    let (status, body) = s
        .introspect("/oauth2/introspect", ("viewer", "viewer-password"), token)
        .await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(true)));
    let (status, body) = s
        .introspect("/oauth2/introspect", ("nobody", "nobody-password"), token)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    // `…/viewer` is a sibling of `…/view`, not a child.
    let (status, _) = s
        .introspect("/oauth2/introspect", ("sibling", "sibling-password"), token)
        .await;
    assert_eq!(status, 403);
    let (status, body) = s
        .introspect("/oauth2/introspect", ("viewer", "wrong"), token)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = s
        .introspect("/oauth2/introspect", ("ghost", "viewer-password"), token)
        .await;
    assert_eq!(status, 401);
    let r = s
        .client
        .post(s.url("/oauth2/introspect"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

async fn client_callers_see_their_own_tokens_unless_allowed(s: TestServer) {
    let mine = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    let theirs = s
        .client_token("/t/foo.com/oauth2/token", FOO_OTHER, None)
        .await;
    let path = "/t/foo.com/oauth2/introspect";
    let (_, body) = s.introspect(path, FOO_CLIENT, token_of(&mine)).await;
    assert_eq!(body["active"], true);
    let (status, body) = s.introspect(path, FOO_CLIENT, token_of(&theirs)).await;
    assert_eq!((status, body), (200, json!({"active": false})));
    // An allowed client sees any token of the tenant.
    let (_, body) = s.introspect(path, FOO_ALLOWED, token_of(&theirs)).await;
    assert_eq!(body["active"], true);
    // client_secret_post, as openid-client sends it.
    let r = s
        .post_form(
            path,
            None,
            &[
                ("token", token_of(&mine)),
                ("client_id", "foo-client"),
                ("client_secret", "foo-secret"),
            ],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    let r = s
        .post_form(
            path,
            None,
            &[
                ("token", token_of(&mine)),
                ("client_id", "foo-client"),
                ("client_secret", "bad"),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);
    // A wrong client secret in Basic.
    let (status, _) = s
        .introspect(path, ("foo-client", "wrong"), token_of(&mine))
        .await;
    assert_eq!(status, 401);
}

async fn bearer_callers_use_their_owners_rights(s: TestServer) {
    let target = s
        .client_token("/t/foo.com/oauth2/token", FOO_OTHER, None)
        .await;
    let path = "/t/foo.com/oauth2/introspect";
    let bearer = |token: String| {
        let client = s.client.clone();
        let url = s.url(path);
        let target = token_of(&target).to_owned();
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("token={target}"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    // The admin's own token (password grant) carries the admin's permissions.
    let admin = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("admin", "foo-admin-password"),
        )
        .await;
    let (status, body) = bearer(token_of(&admin).to_owned()).await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(true)));
    // Alice holds no permission.
    let alice = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    assert_eq!(bearer(token_of(&alice).to_owned()).await.0, 403);
    // A token of an allowed client may introspect.
    let allowed = s
        .client_token("/t/foo.com/oauth2/token", FOO_ALLOWED, None)
        .await;
    assert_eq!(
        bearer(token_of(&allowed).to_owned()).await.1["active"],
        true
    );
    // Any other client's token may not; an unknown token does not authenticate.
    let plain = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    assert_eq!(bearer(token_of(&plain).to_owned()).await.0, 403);
    assert_eq!(bearer("not-a-token".into()).await.0, 401);
    // A refresh token is not a Bearer credential.
    assert_eq!(bearer(refresh_of(&admin).to_owned()).await.0, 401);
}

async fn the_password_grant_names_the_user(s: TestServer) {
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    assert!(pair["refresh_token"].is_string());
    let (_, body) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, token_of(&pair))
        .await;
    assert_eq!(body["username"], "alice@foo.com");
    assert_eq!(body["sub"], "alice@foo.com");
    let (_, body) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, refresh_of(&pair))
        .await;
    assert_eq!(body["token_type"], "refresh_token");
    // `alice@foo.com` is the same user; a wrong password and an unknown user read alike.
    s.password_token(
        "/oauth2/token",
        FOO_CLIENT,
        ("alice@foo.com", "alice-password"),
    )
    .await;
    for (user, password) in [
        ("alice", "wrong"),
        ("ghost", "alice-password"),
        ("alice@bar.com", "alice-password"),
    ] {
        let r = s
            .post_form(
                "/t/foo.com/oauth2/token",
                Some(FOO_CLIENT),
                &[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(
            body["error_description"],
            "the username or password is wrong"
        );
    }
    // A super-tenant user through the super tenant's client.
    let admin = s.password_token("/oauth2/token", SUPER_CLIENT, ADMIN).await;
    let (_, body) = s
        .introspect("/oauth2/introspect", ADMIN, token_of(&admin))
        .await;
    assert_eq!(body["username"], "admin@carbon.super");
}

async fn the_refresh_grant_rotates_and_reuse_revokes_the_grant(s: TestServer) {
    let first = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    let refresh = |token: String| {
        let s = &s;
        async move {
            s.post_form(
                "/t/foo.com/oauth2/token",
                Some(FOO_CLIENT),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let r = refresh(refresh_of(&first).to_owned()).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    assert_ne!(refresh_of(&second), refresh_of(&first));
    // The old access token is superseded, the new pair is active.
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, token_of(&first)).await);
    assert!(
        !s.is_active("/t/foo.com", FOO_ADMIN, refresh_of(&first))
            .await
    );
    assert!(
        s.is_active("/t/foo.com", FOO_ADMIN, token_of(&second))
            .await
    );
    // Reusing the rotated refresh token fails and revokes the whole grant.
    let r = refresh(refresh_of(&first).to_owned()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert!(
        !s.is_active("/t/foo.com", FOO_ADMIN, token_of(&second))
            .await
    );
    let r = refresh(refresh_of(&second).to_owned()).await;
    assert_eq!(r.status(), 400);
    // Another client cannot use someone else's refresh token.
    let third = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(FOO_OTHER),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_of(&third)),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        s.is_active("/t/foo.com", FOO_ADMIN, refresh_of(&third))
            .await
    );
    // A refresh may narrow the scope but not widen it.
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(FOO_CLIENT),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_of(&third)),
                ("scope", "more"),
            ],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
}

async fn revoking_an_access_token_revokes_its_refresh_token(s: TestServer) {
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    let r = s
        .post_form(
            "/oauth2/revoke",
            Some(FOO_CLIENT),
            &[
                ("token", token_of(&pair)),
                ("token_type_hint", "access_token"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, token_of(&pair)).await);
    assert!(
        !s.is_active("/t/foo.com", FOO_ADMIN, refresh_of(&pair))
            .await
    );
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(FOO_CLIENT),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_of(&pair)),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    // Revoking again, or an unknown token: 200 with an empty body.
    for token in [token_of(&pair), "never-issued"] {
        let r = s
            .post_form(
                "/t/foo.com/oauth2/revoke",
                Some(FOO_CLIENT),
                &[("token", token)],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().is_empty());
    }
}

async fn revoking_a_refresh_token_revokes_its_access_tokens(s: TestServer) {
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    let other = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    let r = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            None,
            &[
                ("token", refresh_of(&pair)),
                ("client_id", "foo-client"),
                ("client_secret", "foo-secret"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        !s.is_active("/t/foo.com", FOO_ADMIN, refresh_of(&pair))
            .await
    );
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, token_of(&pair)).await);
    // Another grant of the same user is untouched.
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, token_of(&other)).await);
}

async fn a_client_cannot_revoke_another_clients_token(s: TestServer) {
    let theirs = s
        .client_token("/t/foo.com/oauth2/token", FOO_OTHER, None)
        .await;
    let r = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(FOO_CLIENT),
            &[("token", token_of(&theirs))],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        s.is_active("/t/foo.com", FOO_ADMIN, token_of(&theirs))
            .await
    );
    let r = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(("foo-client", "wrong")),
            &[("token", token_of(&theirs))],
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = s
        .post_form("/t/foo.com/oauth2/revoke", Some(FOO_CLIENT), &[])
        .await;
    assert_eq!(r.status(), 400);
}

async fn tokens_expire_by_time(s: TestServer) {
    let admin = ("admin@short.com", "short-admin-password");
    let client = ("short-client", "short-secret");
    // Verify the admin once first, so that no argon2 work sits between issuing the
    // token and asking about it.
    assert!(!s.is_active("/t/short.com", admin, "warm-up").await);
    let pair = s
        .password_token(
            "/t/short.com/oauth2/token",
            client,
            ("admin", "short-admin-password"),
        )
        .await;
    assert_eq!(pair["expires_in"], 2);
    assert!(s.is_active("/t/short.com", admin, token_of(&pair)).await);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(!s.is_active("/t/short.com", admin, token_of(&pair)).await);
    // The refresh token (3 s) is past its lifetime too.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let r = s
        .post_form(
            "/t/short.com/oauth2/token",
            Some(client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_of(&pair)),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    // The expiry was recorded.
    let digest = portcullis::service::token_text::digest(token_of(&pair));
    let tenant = s
        .gateway
        .tenant_for_request(Some("short.com"))
        .await
        .unwrap();
    let record = s
        .gateway
        .store()
        .token(tenant.id, &digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, portcullis::domain::token::State::Expired);
    assert_eq!(
        record.state_reason,
        Some(portcullis::domain::token::Reason::Expired)
    );
}

async fn token_endpoint_errors_follow_rfc_6749(s: TestServer) {
    type Case<'a> = (
        Option<(&'a str, &'a str)>,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (Some(FOO_CLIENT), vec![], 400, "invalid_request"),
        (
            Some(FOO_CLIENT),
            vec![("grant_type", "urn:nope")],
            400,
            "unsupported_grant_type",
        ),
        (
            Some(FOO_CLIENT),
            vec![("grant_type", "authorization_code"), ("code", "x")],
            400,
            "unauthorized_client",
        ),
        (
            Some(FOO_ALLOWED),
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
            400,
            "unauthorized_client",
        ),
        (
            Some(("foo-narrow", "narrow-secret")),
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "read admin"),
            ],
            400,
            "invalid_scope",
        ),
        (
            Some(FOO_CLIENT),
            vec![("grant_type", "password"), ("username", "alice")],
            400,
            "invalid_request",
        ),
        (
            Some(("foo-client", "wrong")),
            vec![("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (
            Some(("ghost", "x")),
            vec![("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (
            None,
            vec![("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (
            None,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "foo-client"),
            ],
            401,
            "invalid_client",
        ),
    ];
    for (auth, form, status, error) in cases {
        let r = s.post_form("/t/foo.com/oauth2/token", auth, &form).await;
        assert_eq!(r.status().as_u16(), status, "{form:?}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], error, "{form:?}");
        assert!(body["error_description"].is_string());
    }
    // client_secret_post works; using both methods at once does not.
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "foo-client"),
                ("client_secret", "foo-secret"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(FOO_CLIENT),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", "foo-secret"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    // An allowed scope is granted.
    let t = s
        .client_token(
            "/t/foo.com/oauth2/token",
            ("foo-narrow", "narrow-secret"),
            Some("write read"),
        )
        .await;
    assert_eq!(t["scope"], "write read");
}

async fn basic_client_credentials_are_percent_decoded(s: TestServer) {
    // openid-client and the oauth2 crate send `_` as %5F and form-encode secrets.
    let r = s
        .post_form(
            "/oauth2/token",
            Some(("super%5Funder%5Fscore", "s%2Bcret%2Fwith%3Dodd%26chars")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);
    // Raw curl leaves `+` alone.
    let r = s
        .post_form(
            "/oauth2/token",
            Some(("super_under_score", "s+cret/with=odd&chars")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);
}

async fn metadata_is_the_same_in_all_three_forms(s: TestServer) {
    let get = |path: &str| {
        let r = s.client.get(s.url(path)).send();
        async move {
            let r = r.await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/json");
            r.json::<Value>().await.unwrap()
        }
    };
    let a = get("/t/foo.com/.well-known/oauth-authorization-server").await;
    let b = get("/.well-known/oauth-authorization-server/t/foo.com").await;
    assert_eq!(a, b);
    let public = s.gateway.config().server.public_url.clone();
    assert_eq!(a["issuer"], format!("{public}/t/foo.com"));
    assert_eq!(
        a["token_endpoint"],
        format!("{public}/t/foo.com/oauth2/token")
    );
    let root = get("/.well-known/oauth-authorization-server").await;
    assert_eq!(root["issuer"], public.as_str());
    assert!(!root["issuer"].as_str().unwrap().ends_with('/'));
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        assert!(root[key].as_str().unwrap().starts_with("https://"), "{key}");
    }
    assert_eq!(
        root["grant_types_supported"],
        json!([
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token"
        ])
    );
    assert_eq!(root["response_types_supported"], json!(["code"]));
    assert_eq!(root["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        root["authorization_endpoint"],
        format!("{public}/oauth2/authorize")
    );
    // The issuer is the same string introspection reports, whatever Host says.
    let token = s.client_token("/oauth2/token", SUPER_CLIENT, None).await;
    let r = s
        .client
        .post(s.url("/oauth2/introspect"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Host", "evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={}", token_of(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["iss"], root["issuer"]);
}

async fn no_token_plaintext_is_stored(s: TestServer) {
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            FOO_CLIENT,
            ("alice", "alice-password"),
        )
        .await;
    let cc = s.client_token("/oauth2/token", SUPER_CLIENT, None).await;
    let plaintexts = [
        token_of(&pair).to_owned(),
        refresh_of(&pair).to_owned(),
        token_of(&cc).to_owned(),
    ];
    match s.database.backend {
        common::Backend::Sqlite => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(s.database.dir.path()).unwrap() {
                bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
            }
            assert!(bytes.len() > 4096);
            for p in &plaintexts {
                assert!(
                    !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
                    "plaintext token found in the database files"
                );
            }
            for secret in ["alice-password", "foo-secret", ADMIN_PASSWORD] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "a secret is in the database files"
                );
            }
        }
        common::Backend::Postgres => {
            let pool = sqlx::postgres::PgPool::connect(&s.database.url)
                .await
                .unwrap();
            let dump: Vec<(String,)> = sqlx::query_as("SELECT t::text FROM tokens t UNION ALL SELECT u::text FROM users u UNION ALL SELECT c::text FROM clients c")
                .fetch_all(&pool).await.unwrap();
            let dump: String = dump.into_iter().map(|r| r.0).collect();
            assert!(dump.len() > 100);
            for p in plaintexts.iter().map(String::as_str).chain([
                "alice-password",
                "foo-secret",
                ADMIN_PASSWORD,
            ]) {
                assert!(!dump.contains(p), "plaintext found in PostgreSQL");
            }
        }
    }
}

async fn an_unreachable_store_is_503_never_inactive(s: TestServer) {
    let cached = s.client_token("/oauth2/token", SUPER_CLIENT, None).await;
    assert!(s.is_active("", ADMIN, token_of(&cached)).await);
    s.gateway.close().await;
    match s.database.backend {
        // One instance: a cache hit by an already-verified admin touches no database
        // at all, so with the store closed it still answers.
        Backend::Sqlite => assert!(s.is_active("", ADMIN, token_of(&cached)).await),
        // Several instances may share PostgreSQL: with the database gone, so is the
        // channel that proves the caches current, and nothing is answered from them.
        Backend::Postgres => {
            let noticed = std::time::Instant::now();
            while s.gateway.caches_trusted() {
                assert!(noticed.elapsed() < std::time::Duration::from_secs(2));
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let (status, _) = s
                .introspect("/oauth2/introspect", ADMIN, token_of(&cached))
                .await;
            assert_eq!(status, 503);
        }
    }
    let (status, body) = s
        .introspect("/oauth2/introspect", ADMIN, "a-token-not-in-any-cache")
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    let r = s
        .post_form(
            "/oauth2/token",
            Some(SUPER_CLIENT),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = s
        .post_form(
            "/oauth2/revoke",
            Some(SUPER_CLIENT),
            &[("token", token_of(&cached))],
        )
        .await;
    assert_eq!(r.status(), 503);
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

async fn a_verified_admin_costs_no_argon2(s: TestServer) {
    let token = s.client_token("/oauth2/token", SUPER_CLIENT, None).await;
    s.introspect("/oauth2/introspect", ADMIN, token_of(&token))
        .await;
    let before = s.gateway.argon2_runs();
    for _ in 0..5 {
        assert!(s.is_active("", ADMIN, token_of(&token)).await);
    }
    assert_eq!(s.gateway.argon2_runs(), before);
    // A wrong password, and an unknown user, each cost one run.
    s.introspect("/oauth2/introspect", ("admin", "wrong"), token_of(&token))
        .await;
    s.introspect("/oauth2/introspect", ("ghost", "wrong"), token_of(&token))
        .await;
    assert_eq!(s.gateway.argon2_runs(), before + 2);
    // A secret over 1,024 bytes is refused before hashing.
    let long = "x".repeat(1025);
    let (status, _) = s
        .introspect("/oauth2/introspect", ("admin", &long), token_of(&token))
        .await;
    assert_eq!(status, 401);
    assert_eq!(s.gateway.argon2_runs(), before + 2);
}

on_both_backends!(crate::common::TestServer::for_backend;
    wso2_super_tenant_session,
    wso2_tenant_session,
    a_tenant_path_accepts_only_that_tenants_clients,
    tokens_are_isolated_between_tenants,
    unknown_tenants_are_404_with_json,
    user_callers_need_the_introspection_permission,
    client_callers_see_their_own_tokens_unless_allowed,
    bearer_callers_use_their_owners_rights,
    the_password_grant_names_the_user,
    the_refresh_grant_rotates_and_reuse_revokes_the_grant,
    revoking_an_access_token_revokes_its_refresh_token,
    revoking_a_refresh_token_revokes_its_access_tokens,
    a_client_cannot_revoke_another_clients_token,
    tokens_expire_by_time,
    token_endpoint_errors_follow_rfc_6749,
    basic_client_credentials_are_percent_decoded,
    metadata_is_the_same_in_all_three_forms,
    no_token_plaintext_is_stored,
    an_unreachable_store_is_503_never_inactive,
    a_verified_admin_costs_no_argon2,
);

/// RFC 9700 §4.14.2: a refresh chain ends `grant_max_lifetime` after the grant's first
/// token, whatever the rotations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_chain_ends_at_the_grant_max_lifetime() {
    let mut files = common::default_tenant_files();
    for (domain, text) in &mut files {
        if domain == "foo.com" {
            *text = text.replacen('\n', "\n[tokens]\ngrant_max_lifetime = 3\n", 1);
        }
    }
    let s = TestServer::start_with(common::Backend::Sqlite, files, |_| {}).await;
    let client = ("foo-client", "foo-secret");
    let first = s
        .password_token(
            "/t/foo.com/oauth2/token",
            client,
            ("alice", "alice-password"),
        )
        .await;
    assert!(first["expires_in"].as_i64().unwrap() <= 3, "{first}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let refresh = |token: String| {
        let s = &s;
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            let r = s
                .post_form("/t/foo.com/oauth2/token", Some(client), &form)
                .await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, second) = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 200, "{second}");
    assert!(
        second["expires_in"].as_i64().unwrap() <= 2,
        "the chain's end caps the new tokens: {second}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}
