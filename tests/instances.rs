//! Several instances on one database: how fast a change reaches the others, what an
//! instance does while it cannot hear them, and SQLite's refusal of a second instance.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{settled, two_instances, Backend, TestServer};
use std::time::{Duration, Instant};

const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");

/// A client-credentials token of foo-client, issued on `s`.
async fn token_from(s: &TestServer) -> String {
    let token = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    token["access_token"].as_str().unwrap().to_owned()
}

async fn revoke_on(s: &TestServer, token: &str) {
    let response = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(FOO_CLIENT),
            &[("token", token)],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_the_other_instance_well_within_a_second() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    settled(&b).await;
    let mut delays = Vec::new();
    for _ in 0..40 {
        let token = token_from(&a).await;
        assert!(b.is_active("/t/foo.com", FOO_ADMIN, &token).await);
        revoke_on(&a, &token).await;
        // The revocation is committed when A answers; from then on, how long until B
        // says so. B answers from its cache until the notice arrives.
        let committed = Instant::now();
        while b.is_active("/t/foo.com", FOO_ADMIN, &token).await {
            assert!(committed.elapsed() < Duration::from_secs(1));
        }
        delays.push(committed.elapsed());
    }
    delays.sort();
    let p50 = delays[delays.len() / 2];
    let p99 = delays[delays.len() * 99 / 100];
    println!(
        "propagation A -> B over {} revocations: p50 {:?}, p99 {:?}, max {:?}",
        delays.len(),
        p50,
        p99,
        delays[delays.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_channel_never_hides_a_revocation_and_recovers_by_itself() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    settled(&b).await;
    let token = token_from(&a).await;
    assert!(
        b.is_active("/t/foo.com", FOO_ADMIN, &token).await,
        "cached on B"
    );

    // Cut every listener of this database's channel, as a failover or a reaper would.
    common::cut_off(&a, &b).await;

    // Meanwhile the token is revoked on A: B must never call it active again.
    revoke_on(&a, &token).await;
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_millis(1500) {
        assert!(!b.is_active("/t/foo.com", FOO_ADMIN, &token).await);
    }
    settled(&b).await;
    assert!(!b.is_active("/t/foo.com", FOO_ADMIN, &token).await);

    // Recovered: a new revocation on A reaches B through the channel again.
    let next = token_from(&a).await;
    assert!(b.is_active("/t/foo.com", FOO_ADMIN, &next).await);
    revoke_on(&a, &next).await;
    let committed = Instant::now();
    while b.is_active("/t/foo.com", FOO_ADMIN, &next).await {
        assert!(committed.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_one_sqlite_file_is_refused() {
    let a = TestServer::start(Backend::Sqlite).await;
    let mut config = a.gateway.config().clone();
    config.tenants.dir = std::env::temp_dir().join("portcullis-no-tenants-here");
    let refused = portcullis::prepare(std::sync::Arc::new(config), None).await;
    let message = refused
        .err()
        .expect("a second instance started")
        .to_string();
    assert!(message.contains("another instance is serving"), "{message}");
    assert!(message.contains("use PostgreSQL"), "{message}");
}
