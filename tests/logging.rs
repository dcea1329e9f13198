//! One log line per request, with tenant, endpoint, status, latency and caller, and
//! never a token, password, secret or Authorization header. Its own test binary, so
//! that the global log subscriber sees only this test's requests.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestServer, ADMIN_PASSWORD};
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn request_logs_name_the_caller_and_carry_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .init();

    let s = TestServer::start(Backend::Sqlite).await;
    let pair = s
        .password_token(
            "/t/foo.com/oauth2/token",
            ("foo-client", "foo-secret"),
            ("alice", "alice-password"),
        )
        .await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    s.introspect(
        "/t/foo.com/oauth2/introspect",
        ("admin@foo.com", "foo-admin-password"),
        &access,
    )
    .await;
    s.introspect(
        "/oauth2/introspect",
        ("admin", "wrong-password-xyz"),
        &access,
    )
    .await;
    s.introspect("/oauth2/introspect", ("admin", ADMIN_PASSWORD), &access)
        .await;
    s.client
        .post(s.url("/t/foo.com/oauth2/introspect"))
        .bearer_auth(&access)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={refresh}"))
        .send()
        .await
        .unwrap();
    s.post_form(
        "/t/foo.com/oauth2/token",
        Some(("foo-client", "foo-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    s.post_form(
        "/t/foo.com/oauth2/revoke",
        Some(("foo-client", "foo-secret")),
        &[("token", &access)],
    )
    .await;
    s.post_form(
        "/oauth2/token",
        Some(("super-client", "super-secret")),
        &[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "nope-secret-pw"),
        ],
    )
    .await;
    // A signed answer and a key rotation: the master key and the private keys it
    // opens reach no line.
    let signed = s
        .client
        .post(s.url("/t/foo.com/oauth2/introspect"))
        .basic_auth("admin@foo.com", Some("foo-admin-password"))
        .header("Accept", "application/token-introspection+jwt")
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let (status, _) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/keys/rotate",
            ("admin@foo.com", "foo-admin-password"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let master_key = std::fs::read_to_string(&s.database.master_key).unwrap();
    s.stop().await;

    // A server that locks after one failure, so that a line is logged while a request
    // is handled: it sits in the request's span.
    let locking = TestServer::start_with(Backend::Sqlite, common::default_tenant_files(), |c| {
        c.auth.lockout_attempts = 1
    })
    .await;
    let (status, _) = locking
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("admin@foo.com", "wrong-password-xyz"),
            "some-token",
        )
        .await;
    assert_eq!(status, 401);
    locking.stop().await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for secret in [
        access.as_str(),
        refresh.as_str(),
        "alice-password",
        "foo-secret",
        "foo-admin-password",
        "wrong-password-xyz",
        ADMIN_PASSWORD,
        "nope-secret-pw",
        "Basic ",
        "Bearer ",
        master_key.trim(),
    ] {
        assert!(!text.contains(secret), "a log line carries {secret:?}");
    }
    let requests: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 11, "{text}");
    assert!(text.contains("generated the master key"), "{text}");
    let introspection = requests
        .iter()
        .find(|r| r["fields"]["endpoint"] == "introspect")
        .unwrap();
    assert_eq!(introspection["fields"]["tenant"], "foo.com");
    assert_eq!(introspection["fields"]["caller"], "admin@foo.com");
    assert_eq!(introspection["fields"]["status"], 200);
    assert!(introspection["fields"]["latency_us"].is_u64());
    let failed = requests
        .iter()
        .find(|r| r["fields"]["status"] == 401)
        .unwrap();
    assert_eq!(failed["fields"]["tenant"], "carbon.super");
    let lock = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "locked after repeated sign-in failures")
        .unwrap_or_else(|| panic!("no lock warning in {text}"));
    assert_eq!(lock["span"]["name"], "request", "{lock}");
    assert_eq!(lock["span"]["tenant"], "foo.com", "{lock}");
    assert_eq!(lock["span"]["endpoint"], "introspect", "{lock}");
}
