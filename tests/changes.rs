//! Every kind of committed change is seen by the instance that made it on the very next
//! request, and by every other instance on the same database within one second,
//! although each had cached the principal, client, tenant or token just before.
//!
//! On SQLite there is one instance. On PostgreSQL every test runs two real TLS servers,
//! A and B, on one database: the change is made through A and checked on both.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestDatabase, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};

const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");
const ALICE: (&str, &str) = ("alice", "alice-password");
const VIEW: &str = "/permission/admin/manage/identity/applicationmgt/view";
const TOKEN: &str = "/t/foo.com/oauth2/token";
const INTROSPECT: &str = "/t/foo.com/oauth2/introspect";

/// The promise to other instances (SPEC "Several instances").
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);

/// The instances sharing one database.
struct Instances {
    a: TestServer,
    b: Option<TestServer>,
}

impl Instances {
    /// Where changes are made.
    fn writer(&self) -> &TestServer {
        &self.a
    }

    /// Every instance, with how long a change made through the writer may take to
    /// reach it: none for the writer itself.
    fn all(&self) -> Vec<(&TestServer, Duration)> {
        let mut all = vec![(&self.a, Duration::ZERO)];
        all.extend(self.b.iter().map(|b| (b, PROPAGATION_BOUND)));
        all
    }
}

/// The default tenant files, but alice is created through the admin API, so that every
/// change to her may be made (a tenant file's users are the file's).
fn tenant_files() -> Vec<(String, String)> {
    let mut files = common::default_tenant_files();
    for (domain, text) in &mut files {
        if domain == "foo.com" {
            *text = common::without_block(text, "username = \"alice\"");
        }
    }
    files
}

/// One instance on SQLite; two on one PostgreSQL database.
async fn instances(backend: Backend) -> Option<Instances> {
    let started = match backend {
        Backend::Sqlite => Instances {
            a: TestServer::start_with(Backend::Sqlite, tenant_files(), |_| {}).await,
            b: None,
        },
        Backend::Postgres => {
            common::postgres_url()?;
            let a = TestServer::start_with(Backend::Postgres, tenant_files(), |_| {}).await;
            let b = TestServer::start_on(
                TestDatabase::shared_with(&a.database),
                tenant_files(),
                |_| {},
            )
            .await;
            // Until both have heard their own heartbeat, they answer from the database
            // only, and the tests would prove nothing about the caches.
            for s in [&a, &b] {
                let started = Instant::now();
                while !s.gateway.caches_trusted() {
                    assert!(started.elapsed() < Duration::from_secs(5), "never trusted");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Instances { a, b: Some(b) }
        }
    };
    let (user, password) = ALICE;
    started
        .writer()
        .api_user("/t/foo.com", FOO_ADMIN, user, password, &[])
        .await;
    Some(started)
}

/// Waits until `check` holds, for at most `limit` (with a zero limit, one look), and
/// answers how long it took. Fails the test past the limit.
async fn within(limit: Duration, what: &str, check: impl AsyncFn() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not seen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A token pair of alice's, introspected on every instance so that each caches it.
async fn cached_token_of_alice(p: &Instances) -> (String, String) {
    let pair = p.writer().password_token(TOKEN, FOO_CLIENT, ALICE).await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    for (s, _) in p.all() {
        assert!(s.is_active("/t/foo.com", FOO_ADMIN, &access).await);
    }
    (access, refresh)
}

/// Checks on every instance that `token` is no longer active.
async fn inactive_everywhere(p: &Instances, token: &str) {
    for (s, limit) in p.all() {
        within(limit, "the token turned inactive", async || {
            !s.is_active("/t/foo.com", FOO_ADMIN, token).await
        })
        .await;
    }
}

/// The status of a password grant for alice with `password` at `s`.
async fn alice_signs_in(s: &TestServer, password: &str) -> u16 {
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", password),
    ];
    let response = s.post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    response.status().as_u16()
}

/// Alice signs in on every instance (so each caches her and her password), then gets
/// `status` for `password` on each after a change.
async fn alice_everywhere(p: &Instances, password: &str, status: u16) {
    for (s, limit) in p.all() {
        within(limit, "alice's sign-in", async || {
            alice_signs_in(s, password).await == status
        })
        .await;
    }
}

/// The status of a client-credentials request by `client` at `s`.
async fn client_asks(s: &TestServer, client: (&str, &str)) -> u16 {
    let form = [("grant_type", "client_credentials")];
    let response = s.post_form(TOKEN, Some(client), &form).await;
    response.status().as_u16()
}

async fn client_everywhere(p: &Instances, client: (&str, &str), status: u16) {
    for (s, limit) in p.all() {
        within(limit, "the client's token request", async || {
            client_asks(s, client).await == status
        })
        .await;
    }
}

/// A user `bob` of foo.com holding the role `viewer` with the introspection permission,
/// who has just introspected on every instance (so each caches him, his permissions and
/// the rules).
async fn cached_viewer(p: &Instances) -> (&'static str, &'static str) {
    let role = json!({"name": "viewer", "permissions": [VIEW]});
    let w = p.writer();
    let (status, _) = w
        .api("POST", "/t/foo.com/api/v1/roles", FOO_ADMIN, Some(role))
        .await;
    assert_eq!(status, 201);
    let bob = json!({"username": "bob", "password": "bob-password", "roles": ["viewer"]});
    let (status, _) = w
        .api("POST", "/t/foo.com/api/v1/users", FOO_ADMIN, Some(bob))
        .await;
    assert_eq!(status, 201);
    let caller = ("bob@foo.com", "bob-password");
    bob_introspects_everywhere(p, caller, 200).await;
    caller
}

async fn bob_introspects_everywhere(p: &Instances, bob: (&str, &str), status: u16) {
    for (s, limit) in p.all() {
        within(limit, "bob's introspection", async || {
            s.introspect(INTROSPECT, bob, "unknown-token").await.0 == status
        })
        .await;
    }
}

async fn a_revocation_is_seen_everywhere(p: Instances) {
    let (access, refresh) = cached_token_of_alice(&p).await;
    // Revoking the refresh token revokes the access token issued with it (cascade).
    let response = p
        .writer()
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(FOO_CLIENT),
            &[("token", &refresh)],
        )
        .await;
    assert_eq!(response.status(), 200);
    inactive_everywhere(&p, &access).await;
}

async fn an_admin_revocation_is_seen_everywhere(p: Instances) {
    let (access, _) = cached_token_of_alice(&p).await;
    let (status, _) = p
        .writer()
        .api(
            "POST",
            "/t/foo.com/api/v1/tokens/revoke",
            FOO_ADMIN,
            Some(json!({"username": "alice"})),
        )
        .await;
    assert_eq!(status, 200);
    inactive_everywhere(&p, &access).await;
}

async fn a_refresh_and_its_reuse_are_seen_everywhere(p: Instances) {
    let (access, refresh) = cached_token_of_alice(&p).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
    let response = p.writer().post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    assert_eq!(response.status(), 200);
    let next: serde_json::Value = response.json().await.unwrap();
    let next_access = next["access_token"].as_str().unwrap();
    inactive_everywhere(&p, &access).await;
    for (s, _) in p.all() {
        assert!(s.is_active("/t/foo.com", FOO_ADMIN, next_access).await);
    }
    // The spent refresh token presented again revokes the whole grant.
    let again = p.writer().post_form(TOKEN, Some(FOO_CLIENT), &form).await;
    assert_eq!(again.status(), 400);
    inactive_everywhere(&p, next_access).await;
}

async fn a_password_change_is_seen_everywhere(p: Instances) {
    let (access, _) = cached_token_of_alice(&p).await;
    alice_everywhere(&p, ALICE.1, 200).await;
    let body = json!({"password": "a-new-password"});
    let (status, _) = p
        .writer()
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/alice/password",
            FOO_ADMIN,
            Some(body),
        )
        .await;
    assert_eq!(status, 204);
    alice_everywhere(&p, ALICE.1, 400).await;
    alice_everywhere(&p, "a-new-password", 200).await;
    inactive_everywhere(&p, &access).await;
}

async fn a_disable_is_seen_everywhere(p: Instances) {
    let (access, _) = cached_token_of_alice(&p).await;
    alice_everywhere(&p, ALICE.1, 200).await;
    let body = json!({"enabled": false});
    let (status, _) = p
        .writer()
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/alice/enabled",
            FOO_ADMIN,
            Some(body),
        )
        .await;
    assert_eq!(status, 200);
    alice_everywhere(&p, ALICE.1, 400).await;
    inactive_everywhere(&p, &access).await;
}

async fn a_user_delete_is_seen_everywhere(p: Instances) {
    let (access, _) = cached_token_of_alice(&p).await;
    alice_everywhere(&p, ALICE.1, 200).await;
    let (status, _) = p
        .writer()
        .api("DELETE", "/t/foo.com/api/v1/users/alice", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 204);
    alice_everywhere(&p, ALICE.1, 400).await;
    inactive_everywhere(&p, &access).await;
}

async fn a_lock_is_seen_everywhere(p: Instances) {
    alice_everywhere(&p, ALICE.1, 200).await;
    // Five failures (auth.lockout_attempts) through the writer lock her.
    for _ in 0..5 {
        assert_eq!(alice_signs_in(p.writer(), "wrong-password").await, 400);
    }
    alice_everywhere(&p, ALICE.1, 400).await;
}

async fn a_secret_rotation_is_seen_everywhere(p: Instances) {
    let secret = p
        .writer()
        .api_client("/t/foo.com", FOO_ADMIN, "api-client")
        .await;
    let client = ("api-client", secret.as_str());
    // Twice, so that the old secret is remembered as verified.
    client_everywhere(&p, client, 200).await;
    client_everywhere(&p, client, 200).await;
    let (status, rotated) = p
        .writer()
        .api(
            "POST",
            "/t/foo.com/api/v1/clients/api-client/secret",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    client_everywhere(&p, client, 401).await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    client_everywhere(&p, ("api-client", new_secret), 200).await;
}

async fn a_client_delete_is_seen_everywhere(p: Instances) {
    let secret = p
        .writer()
        .api_client("/t/foo.com", FOO_ADMIN, "api-client")
        .await;
    let client = ("api-client", secret.as_str());
    let pair = p.writer().password_token(TOKEN, client, ALICE).await;
    let access = pair["access_token"].as_str().unwrap();
    for (s, _) in p.all() {
        assert!(s.is_active("/t/foo.com", FOO_ADMIN, access).await);
    }
    client_everywhere(&p, client, 200).await;
    let (status, _) = p
        .writer()
        .api(
            "DELETE",
            "/t/foo.com/api/v1/clients/api-client",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 204);
    client_everywhere(&p, client, 401).await;
    inactive_everywhere(&p, access).await;
}

async fn a_settings_change_is_seen_everywhere(p: Instances) {
    // A lifetime every instance uses at once. foo.com's settings are its file's: a
    // tenant made through the API is needed.
    let body =
        json!({"domain": "set.org", "admin": {"username": "boss", "password": "boss-password"}});
    let (status, _) = p
        .writer()
        .api("POST", "/api/v1/tenants", common::super_admin(), Some(body))
        .await;
    assert_eq!(status, 201);
    let boss = ("boss@set.org", "boss-password");
    let secret = p.writer().api_client("/t/set.org", boss, "set-app").await;
    let app = ("set-app", secret.as_str());
    let lifetime = async |s: &TestServer| {
        let form = [("grant_type", "client_credentials")];
        let response = s
            .post_form("/t/set.org/oauth2/token", Some(app), &form)
            .await;
        let body: serde_json::Value = response.json().await.unwrap();
        body["expires_in"].as_i64().unwrap()
    };
    for (s, limit) in p.all() {
        within(limit, "the new tenant", async || lifetime(s).await == 3600).await;
    }
    let settings = json!({"tokens": {"access_token_ttl": 77}});
    let (status, _) = p
        .writer()
        .api("PUT", "/t/set.org/api/v1/settings", boss, Some(settings))
        .await;
    assert_eq!(status, 200);
    for (s, limit) in p.all() {
        within(limit, "the new lifetime", async || lifetime(s).await == 77).await;
    }
}

async fn a_client_registered_after_a_failed_attempt_is_seen_everywhere(p: Instances) {
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
    let path = format!("/t/foo.com/oauth2/authorize?{query}");
    // Every instance remembers the id as absent after this request.
    for (s, _) in p.all() {
        let unknown = s.client.get(s.url(&path)).send().await.unwrap();
        assert_eq!(unknown.status(), 400);
    }
    let body = json!({
        "client_id": "late-spa",
        "public": true,
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://late.foo.com/cb"],
    });
    let (status, _) = p
        .writer()
        .api("POST", "/t/foo.com/api/v1/clients", FOO_ADMIN, Some(body))
        .await;
    assert_eq!(status, 201);
    for (s, limit) in p.all() {
        within(limit, "the sign-in page of the new client", async || {
            let page = s.client.get(s.url(&path)).send().await.unwrap();
            page.status() == 200
        })
        .await;
    }
}

async fn a_role_change_is_seen_everywhere(p: Instances) {
    let bob = cached_viewer(&p).await;
    let narrower = json!({"permissions": ["/permission/admin/monitor"]});
    let (status, _) = p
        .writer()
        .api(
            "PUT",
            "/t/foo.com/api/v1/roles/viewer",
            FOO_ADMIN,
            Some(narrower),
        )
        .await;
    assert_eq!(status, 200);
    bob_introspects_everywhere(&p, bob, 403).await;
}

async fn a_role_delete_is_seen_everywhere(p: Instances) {
    let bob = cached_viewer(&p).await;
    let (status, _) = p
        .writer()
        .api("DELETE", "/t/foo.com/api/v1/roles/viewer", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 204);
    bob_introspects_everywhere(&p, bob, 403).await;
}

async fn a_rules_change_is_seen_everywhere(p: Instances) {
    let bob = cached_viewer(&p).await;
    let w = p.writer();
    let (_, rules) = w
        .api("GET", "/t/foo.com/api/v1/resources", FOO_ADMIN, None)
        .await;
    let mut rules = rules["resources"].as_array().unwrap().clone();
    for rule in &mut rules {
        if rule["context"] == "(.*)/oauth2/introspect(.*)" {
            rule["permissions"] = json!(["/permission/admin/introspect-only"]);
        }
    }
    let body = json!({ "resources": rules });
    let (status, _) = w
        .api("PUT", "/t/foo.com/api/v1/resources", FOO_ADMIN, Some(body))
        .await;
    assert_eq!(status, 200);
    bob_introspects_everywhere(&p, bob, 403).await;
}

async fn tenant_creation_and_deactivation_are_seen_everywhere(p: Instances) {
    let boss = ("boss@new.org", "boss-password");
    let users_of_new_org =
        async |s: &TestServer| s.api("GET", "/t/new.org/api/v1/users", boss, None).await.0;
    for (s, _) in p.all() {
        assert_eq!(users_of_new_org(s).await, 404, "unknown before");
    }
    let body = json!({"domain": "new.org", "admin": {"username": "boss", "password": boss.1}});
    let (status, _) = p
        .writer()
        .api("POST", "/api/v1/tenants", common::super_admin(), Some(body))
        .await;
    assert_eq!(status, 201);
    for (s, limit) in p.all() {
        within(limit, "the new tenant", async || {
            users_of_new_org(s).await == 200
        })
        .await;
    }
    let (status, _) = p
        .writer()
        .api(
            "DELETE",
            "/api/v1/tenants/new.org",
            common::super_admin(),
            None,
        )
        .await;
    assert_eq!(status, 204);
    for (s, limit) in p.all() {
        within(limit, "the deactivated tenant", async || {
            users_of_new_org(s).await == 404
        })
        .await;
    }
}

on_both_backends!(crate::instances;
    a_revocation_is_seen_everywhere,
    an_admin_revocation_is_seen_everywhere,
    a_refresh_and_its_reuse_are_seen_everywhere,
    a_password_change_is_seen_everywhere,
    a_disable_is_seen_everywhere,
    a_user_delete_is_seen_everywhere,
    a_lock_is_seen_everywhere,
    a_secret_rotation_is_seen_everywhere,
    a_client_delete_is_seen_everywhere,
    a_settings_change_is_seen_everywhere,
    a_client_registered_after_a_failed_attempt_is_seen_everywhere,
    a_role_change_is_seen_everywhere,
    a_role_delete_is_seen_everywhere,
    a_rules_change_is_seen_everywhere,
    tenant_creation_and_deactivation_are_seen_everywhere,
);
