//! The admin API's OpenAPI 3.1 document: served to anyone, the same under every
//! tenant, holding no tenant's data, and valid by a validator from the ecosystem
//! (`openapi-spec-validator`, which `.ci/run` installs). That it matches the dispatcher
//! is a unit test beside the dispatcher (`http/admin.rs`).
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestServer};
use serde_json::Value;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_public_the_same_everywhere_and_valid() {
    let s = TestServer::start(Backend::Sqlite).await;
    let fetch = async |path: &str| {
        let response = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(kind, "application/json");
        response.text().await.unwrap()
    };
    let text = fetch("/api/v1/openapi.json").await;
    assert_eq!(fetch("/t/foo.com/api/v1/openapi.json").await, text);
    for tenant_data in ["foo-client", "alice", "foo.com/", "carbon.super"] {
        assert!(!text.contains(tenant_data), "{tenant_data}");
    }
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/users/bulk"]["post"].is_object());
    let r = s
        .client
        .post(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["allow"].to_str().unwrap()),
        (405, "GET")
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &text).unwrap();
    validate(&path);
    s.stop().await;
}

/// Runs `openapi-spec-validator` on the document: the one `PORTCULLIS_OPENAPI_VALIDATOR`
/// names, else the one on the `PATH`.
fn validate(path: &std::path::Path) {
    let validator = std::env::var("PORTCULLIS_OPENAPI_VALIDATOR")
        .unwrap_or_else(|_| "openapi-spec-validator".to_owned());
    let out = match Command::new(&validator).arg(path).output() {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {validator} is not installed ({e}); .ci/run installs it");
            return;
        }
        Err(e) => panic!("{validator} is needed in CI: {e}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("OK"), "{said}");
}
