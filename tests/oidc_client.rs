//! Interoperability with real OpenID Connect libraries: openid-client (Node) signs a
//! user in through discovery and the code flow with PKCE and a nonce, validates the
//! ID token, reads userinfo, refreshes, signs in again silently in the session, and
//! logs out; jose verifies the ID token with the JWKS alone. `.ci/run` installs the
//! pinned packages (`tests/oidc-client/`); outside CI a machine without them skips,
//! saying so.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestServer};
use serde_json::{json, Value};
use std::path::Path;

const FLOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-client");

fn libraries_available() -> bool {
    let installed = Path::new(FLOW).join("node_modules/openid-client").exists();
    if installed {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but tests/oidc-client has no node_modules: .ci/run installs them");
    }
    eprintln!("skipped: run `npm ci --prefix tests/oidc-client` to test with openid-client");
    false
}

async fn openid_client_signs_a_user_in(backend: Backend) {
    if !libraries_available() {
        return;
    }
    // The library fetches discovery from the issuer itself: the public URL must be the
    // server's own address.
    let port = common::free_port();
    let Some(s) = TestServer::for_backend_with(backend, |c| {
        c.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.server.public_url = format!("https://127.0.0.1:{port}");
    })
    .await
    else {
        return;
    };
    // Confidential: a public client may not refresh (SPEC §6).
    let client = json!({
        "client_id": "node-rp",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://rp.example/callback"],
    });
    let admin = ("admin@foo.com", "foo-admin-password");
    let (status, body) = s
        .api("POST", "/t/foo.com/api/v1/clients", admin, Some(client))
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &s.cert_pem).unwrap();
    let issuer = format!("https://127.0.0.1:{port}/t/foo.com");
    let ca_path = ca.path().to_owned();
    let output = tokio::task::spawn_blocking(move || run_flow(&issuer, &secret, &ca_path))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "openid-client failed: {stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    let sub = seen["sub"].as_str().unwrap();
    assert_eq!(seen["nonce_echoed"], true, "{seen}");
    assert_eq!(seen["preferred_username"], "alice");
    assert_eq!(
        seen["userinfo"],
        json!({"sub": sub, "preferred_username": "alice"})
    );
    assert_eq!(seen["refreshed_sub"], sub);
    assert_eq!(
        (&seen["jose_sub"], &seen["jose_alg"]),
        (&json!(sub), &json!("ES256"))
    );
    let (_, jwks) = s.api("GET", "/t/foo.com/oauth2/jwks", admin, None).await;
    assert_eq!(
        jwks["keys"][0]["kid"], seen["jose_kid"],
        "signed with the current key"
    );
    // Single sign-on, then the library's logout URL ends it.
    assert_eq!(seen["before_logout"], "code", "{seen}");
    assert_eq!(seen["logout_back_to"], "https://rp.example/callback");
    assert_eq!(seen["logout_state_echoed"], true);
    assert_eq!(seen["after_logout"], "login_required", "{seen}");
}

/// Runs `flow.mjs` against `issuer`, trusting the certificate at `ca`; a run that
/// takes more than a minute is killed.
fn run_flow(issuer: &str, secret: &str, ca: &Path) -> std::process::Output {
    let mut child = std::process::Command::new("node")
        .arg("flow.mjs")
        .current_dir(FLOW)
        .env("NODE_EXTRA_CA_CERTS", ca)
        .env("ISSUER", issuer)
        .env("CLIENT_ID", "node-rp")
        .env("CLIENT_SECRET", secret)
        .env("REDIRECT_URI", "https://rp.example/callback")
        .env("USERNAME", "alice")
        .env("PASSWORD", "alice-password")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("openid-client did not finish within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_a_user_in_sqlite() {
    openid_client_signs_a_user_in(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_a_user_in_postgres() {
    openid_client_signs_a_user_in(Backend::Postgres).await;
}
