//! Upgrades in place: a database written by release 0.1.0 (tests/fixtures/v0.1.0, made
//! by tests/fixtures/make-upgrade-fixture.sh) is migrated at the next start, and
//! everything it held carries over: token states and reasons, a rotated refresh
//! token's reuse, users, clients and their secrets, lockout counters, the audit log.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestDatabase, TestServer};
use serde_json::{json, Value};
use sqlx::Connection;
use std::path::Path;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v0.1.0");

fn tenant_files() -> Vec<(String, String)> {
    std::fs::read_dir(Path::new(FIXTURE).join("tenants"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let domain = p.file_stem().unwrap().to_str().unwrap().to_owned();
            (domain, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The fixture's times moved to now, so that its tokens are as young as when it was
/// written (they were issued for an hour).
const SHIFT: &str = "UPDATE tokens SET issued_at = issued_at + $1, not_before = not_before + $1, \
                     expires_at = expires_at + $1, \
                     state_changed_at = CASE WHEN state_changed_at IS NULL THEN NULL ELSE state_changed_at + $1 END";

async fn fixture_database(backend: Backend) -> Option<TestDatabase> {
    if backend == Backend::Postgres {
        common::postgres_url()?;
    }
    let database = TestDatabase::new(backend).await;
    let now = portcullis::service::now();
    match backend {
        Backend::Sqlite => {
            let file = database.dir.path().join("portcullis.db");
            std::fs::copy(Path::new(FIXTURE).join("portcullis.db"), &file).unwrap();
        }
        Backend::Postgres => {
            let schema = database
                .url
                .rsplit("search_path%3D")
                .next()
                .unwrap()
                .to_owned();
            let dump = std::fs::read_to_string(Path::new(FIXTURE).join("postgres.sql")).unwrap();
            let script: String = dump
                .lines()
                .filter(|l| !l.starts_with('\\') && *l != "CREATE SCHEMA fixture;")
                .map(|l| l.replace("fixture.", &format!("{schema}.")) + "\n")
                .collect();
            let mut conn = sqlx::PgConnection::connect(&common::postgres_url().unwrap())
                .await
                .unwrap();
            sqlx::raw_sql(&script).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    // The same statements for both, each through its own driver.
    let newest = "SELECT MAX(issued_at) FROM tokens";
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&database.url)
                .await
                .unwrap();
            let newest: i64 = sqlx::query_scalar(newest)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let shift = sqlx::query(SHIFT).bind(now - newest);
            shift.execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&database.url).await.unwrap();
            let newest: i64 = sqlx::query_scalar(newest)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let shift = sqlx::query(SHIFT).bind(now - newest);
            shift.execute(&mut conn).await.unwrap();
        }
    }
    Some(database)
}

fn session(backend: Backend) -> Value {
    let name = match backend {
        Backend::Sqlite => "session-sqlite.json",
        Backend::Postgres => "session-postgres.json",
    };
    serde_json::from_str(&std::fs::read_to_string(Path::new(FIXTURE).join(name)).unwrap()).unwrap()
}

async fn upgrade(backend: Backend) {
    let Some(database) = fixture_database(backend).await else {
        return;
    };
    let s = TestServer::start_on(database, tenant_files(), |_| {}).await;
    let t = session(backend);
    let token = |k: &str| t[k].as_str().unwrap().to_owned();
    let foo_admin = ("admin@foo.com", "foo-admin-demo");
    let super_admin = ("admin", t["admin_password"].as_str().unwrap());

    // The two failed sign-ins of the session still count toward the lock.
    let foo_tenant = s.gateway.tenant_for_request(Some("foo.com")).await.unwrap();
    let admin = s
        .gateway
        .store()
        .user(foo_tenant.id, "admin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.failed_attempts, 2);

    // Tenants from before signing keys got one each at this first start.
    let keyed = s.gateway.store().active_signing_keys().await.unwrap();
    let tenants = s.gateway.store().tenants().await.unwrap();
    assert_eq!(keyed.len(), tenants.len());
    assert!(tenants
        .iter()
        .all(|t| keyed.iter().any(|k| k.tenant_id == t.id)));

    // Token states carry over, reasons and all.
    assert!(s.is_active("", super_admin, &token("active")).await);
    let (_, answer) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            foo_admin,
            &token("user_access"),
        )
        .await;
    assert_eq!(
        (answer["active"].as_bool(), answer["username"].as_str()),
        (Some(true), Some("admin@foo.com"))
    );
    assert!(
        !s.is_active("/t/foo.com", foo_admin, &token("superseded"))
            .await
    );
    let lookup = |k: &'static str| {
        let (s, token) = (&s, token(k));
        async move {
            s.api(
                "POST",
                "/t/foo.com/api/v1/tokens/lookup",
                foo_admin,
                Some(json!({ "token": token })),
            )
            .await
            .1
        }
    };
    let revoked = lookup("revoked").await;
    assert_eq!(
        (revoked["state"].as_str(), revoked["state_reason"].as_str()),
        (Some("REVOKED"), Some("revoked_by_client"))
    );
    assert_eq!(lookup("superseded").await["state_reason"], "refreshed");

    // The rotated refresh token's reuse still revokes its whole grant.
    let client = ("okaN2IXAsLx5SBH9Los1C6zX1RIa", "foo-demo-secret");
    let reuse = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token("rotated")),
            ],
        )
        .await;
    assert_eq!(reuse.status(), 400);
    assert!(
        !s.is_active("/t/foo.com", foo_admin, &token("user_access"))
            .await
    );
    assert_eq!(
        lookup("user_refresh").await["state_reason"],
        "refresh_reuse"
    );

    // Users, clients and their secrets, lockout counters and the audit log carry over.
    let bob = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(client),
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "bob-password-1"),
            ],
        )
        .await;
    assert_eq!(bob.status(), 200);
    let api = s
        .post_form(
            "/t/foo.com/oauth2/token",
            Some(("api-client", t["api_secret"].as_str().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(api.status(), 200);
    let foo_tenant = s.gateway.tenant_for_request(Some("foo.com")).await.unwrap();
    let (status, audit) = s
        .api("GET", "/t/foo.com/api/v1/audit?limit=100", foo_admin, None)
        .await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"client.create") && actions.contains(&"user.signin_failure"),
        "{actions:?}"
    );
    // What the new release added has its defaults.
    let api_client = s
        .gateway
        .store()
        .client("api-client")
        .await
        .unwrap()
        .unwrap();
    assert!(api_client.require_pkce);
    assert_eq!(foo_tenant.settings.lifetimes.grant_max_lifetime, 2_592_000);

    // Who owns what comes out right: what the files declare is the files'.
    let owner = async |path: &str| {
        let (status, object) = s
            .api("GET", &format!("/t/foo.com/api/v1/{path}"), foo_admin, None)
            .await;
        assert_eq!(status, 200, "{path}: {object}");
        object["managed_by"].as_str().unwrap().to_owned()
    };
    assert_eq!(owner("users/admin").await, "file");
    assert_eq!(owner("users/bob").await, "api");
    assert_eq!(owner("clients/okaN2IXAsLx5SBH9Los1C6zX1RIa").await, "file");
    assert_eq!(owner("clients/api-client").await, "api");
    assert_eq!(owner("settings").await, "file");
    assert_eq!(owner("resources").await, "api");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_of_release_0_1_0_upgrades_in_place() {
    upgrade(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_release_0_1_0_upgrades_in_place() {
    upgrade(Backend::Postgres).await;
}
