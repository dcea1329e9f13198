//! Memory under abuse (SPEC §4): unauthenticated input with huge identifiers, and a
//! flood of wrong passwords. One test in its own binary, so that nothing else in the
//! process moves its resident set size.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{default_tenant_files, Backend, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

const MIB: u64 = 1024 * 1024;

/// argon2id's default memory (19 MiB), what each hashing worker keeps.
const ARGON2_MEMORY: u64 = 19 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_unauthenticated_floods() {
    let s = Arc::new(
        TestServer::start_with(Backend::Sqlite, default_tenant_files(), |c| {
            c.rate_limits.failed_auth_per_address = 0;
        })
        .await,
    );

    // 1. Long client ids: refused before any lookup, cache entry or hash.
    let long_id: String = (0..60_000)
        .map(|i| char::from(b"0123456789abcdef"[i % 16]))
        .collect();
    let send = |path: &'static str, n: usize| {
        let (s, long_id) = (s.clone(), long_id.clone());
        async move {
            for _ in 0..n {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", long_id.as_str()),
                ];
                let status = s.post_form(path, None, &form).await.status().as_u16();
                assert_eq!(status, 401);
            }
        }
    };
    send("/oauth2/token", 200).await;
    let before = rss();
    let workers: Vec<_> = (0..10)
        .map(|i| {
            tokio::spawn(send(
                if i % 2 == 0 {
                    "/oauth2/token"
                } else {
                    "/oauth2/revoke"
                },
                1_000,
            ))
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let after = rss();
    eprintln!(
        "10,000 requests with 60 KB client ids: RSS {} -> {} MiB",
        before / MIB,
        after / MIB
    );
    assert!(
        after < before + 20 * MIB,
        "RSS grew from {before} to {after}"
    );

    // 2. A 60-way flood of wrong passwords for unknown users.
    let permits = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let before = rss();
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..60)
        .map(|i| {
            let (s, stop) = (s.clone(), stop.clone());
            tokio::spawn(async move {
                let (name, password) = (format!("ghost{i}@foo.com"), format!("wrong-{i}"));
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = s
                        .introspect("/t/foo.com/oauth2/introspect", (&name, &password), "x")
                        .await;
                    if status == 429 || status == 503 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    let mut peak = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss());
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss();
    let bound = before + permits * ARGON2_MEMORY + 32 * MIB;
    eprintln!(
        "wrong-password flood: RSS {} MiB before, {} MiB peak, {} MiB after (bound {} MiB)",
        before / MIB,
        peak / MIB,
        after / MIB,
        bound / MIB
    );
    assert!(peak < bound, "peak {peak} over {bound}");
    assert!(after < bound, "after {after} over {bound}");

    // 3. 2,000 idle TLS connections, from five loopback addresses (under the default
    // 512 per address): what each costs, and a new client still served meanwhile.
    let before = rss();
    let mut idle = Vec::new();
    for i in 0..2_000u32 {
        let source = std::net::IpAddr::from([127, 0, 0, 1 + (i % 5) as u8]);
        idle.push(common::tls_connection_from(&s, source).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss();
    let per_connection = after.saturating_sub(before) / 2_000;
    eprintln!(
        "2,000 idle TLS connections: RSS {} -> {} MiB, {} KiB each (client and server sides together)",
        before / MIB,
        after / MIB,
        per_connection / 1024
    );
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "a new client is served while 2,000 connections idle"
    );
    assert!(
        per_connection < 256 * 1024,
        "{per_connection} bytes per idle connection"
    );
    drop(idle);
}
